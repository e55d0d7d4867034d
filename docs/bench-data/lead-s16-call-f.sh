#!/usr/bin/env bash
# Session-16 lead, call f: where the other production GEMMs spend their time - ncu source page (per-SASS-instruction
# samples, CSV) and the per-kernel metrics for FP8 GEMM2 _m128u_ybf16 (down 32 x 512), BF16 GEMM1 _d (gate+up 32 x 512)
# and BF16 GEMM2 with bf16 Y (down 32 x 512), on d137ffa's fatbin.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-300}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs
B=$G/../scripts/bench; NEW=$G/new2/moe_kernels.fatbin
cd $B
stamp start
for K in grouped_gemm2_fp8_m128u_ybf16 grouped_gemm1_swiglu_bf16_d grouped_gemm2_bf16_ybf16; do
  timeout -s KILL $(left 80) ncu --clock-control none --kernel-name "regex:grouped_gemm" --section SourceCounters --section WarpStateStats \
    --page source --print-source sass --csv python3 gemm_bench.py profile --module $NEW --kernels $K > /tmp/logs/ncu-src-$K.csv 2>&1
  stamp "ncu source $K rc $?: $(wc -l < /tmp/logs/ncu-src-$K.csv) lines"
done
M="gpu__time_duration.sum,sm__cycles_elapsed.avg,sm__cycles_elapsed.avg.per_second,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,regex:smsp__average_warps_issue_stalled_(barrier|wait|long_scoreboard|gmma|mio_throttle|lg_throttle|dispatch_stall|math_pipe_throttle)_per_issue_active\.ratio"
timeout -s KILL $(left 80) ncu --clock-control none --kernel-name "regex:grouped_gemm" --metrics "$M" \
  python3 gemm_bench.py profile --module $NEW --kernels grouped_gemm2_fp8_m128u_ybf16,grouped_gemm1_swiglu_bf16_d,grouped_gemm2_bf16_ybf16 > /tmp/logs/ncu-metrics.txt 2>&1
stamp "ncu metrics rc $?"
(cd /tmp/logs && for f in ncu-src-*.csv; do xz -k $f; done && cp ncu-src-*.csv.xz ncu-metrics.txt $OUT/)
grep -E "grouped_gemm|duration|elapsed|inst_executed|issue_active|stalled" /tmp/logs/ncu-metrics.txt | tr -s ' ' | cut -c1-150
