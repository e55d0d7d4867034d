#!/usr/bin/env bash
# Session-14 lead, call l: ncu of GEMM1 production _m128usu2d beside the N-pair tile _m128pn on 32 x 2048 (one launch
# each): where _m128pn loses its 10-23 % (stall reasons, tensor pipe, L2).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
DEADLINE=${DEADLINE:-200}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs && rm -f /tmp/logs/*
cp $G/../scripts/bench/gemm_bench.py $G/../scripts/bench/deepgemm_side_by_side.py $G/
cd $G
NCU_SECTIONS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section LaunchStats"
timeout -s KILL $(left 150) ncu --clock-control none --kernel-name regex:'grouped_gemm1' $NCU_SECTIONS \
  --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active \
  python3 deepgemm_side_by_side.py --profile --no-dg --module moe_kernels.fatbin --shapes 2 \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128pn > /tmp/logs/ncu.log 2>&1
stamp "ncu rc $?"
cp /tmp/logs/ncu.log $OUT/
grep -aE "^  grouped|Duration|SM Frequency|Compute \(SM\) Throughput|L2 Cache Throughput|gmma_cycles_active|Warp Cycles Per Issued|Issue Slots Busy|No Eligible|Stall|Registers Per|Cluster" /tmp/logs/ncu.log | cut -c1-150 | head -60
