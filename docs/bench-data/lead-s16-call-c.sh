#!/usr/bin/env bash
# Session-16 lead, call c: where production GEMM1 _m128usu2d (fast SwiGLU epilogue) spends its time now - ncu's source
# page (per-SASS-instruction samples, CSV) on Mixtral gate+up (shape 6) and 32 x 2048 (shape 2), then the per-kernel
# stall breakdown, tensor-pipe and clock metrics on both shapes.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs
B=$G/../scripts/bench; NEW=$G/new/moe_kernels.fatbin
cd $B
stamp start
for S in 6 2; do
  timeout -s KILL $(left 120) ncu --clock-control none --kernel-name "regex:grouped_gemm1" --section SourceCounters --section WarpStateStats \
    --page source --print-source sass --csv \
    python3 deepgemm_side_by_side.py --profile --no-dg --no-torch --module $NEW --shapes $S --kernels grouped_gemm1_swiglu_fp8_m128usu2d > /tmp/logs/ncu-src-s$S.csv 2>&1
  stamp "ncu source shape $S rc $?: $(wc -l < /tmp/logs/ncu-src-s$S.csv) lines"
done
M="gpu__time_duration.sum,sm__cycles_elapsed.avg,smsp__cycles_active.avg,sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio"
timeout -s KILL $(left 120) ncu --clock-control none --kernel-name "regex:grouped_gemm1" --metrics "$M" \
  python3 deepgemm_side_by_side.py --profile --no-dg --no-torch --module $NEW --shapes 6,2 --kernels grouped_gemm1_swiglu_fp8_m128usu2d > /tmp/logs/ncu-metrics.txt 2>&1
stamp "ncu metrics rc $?"
(cd /tmp/logs && xz -k ncu-src-*.csv && cp ncu-src-*.csv.xz ncu-metrics.txt $OUT/)
grep -E "grouped_gemm1|duration|elapsed|tensor|inst_executed|issue_active|stalled_(barrier|wait|dispatch|long|gmma|math|mio|short|no_inst|selected|not_sel|branch|sleep|misc)" /tmp/logs/ncu-metrics.txt | tr -s ' ' | cut -c1-150
