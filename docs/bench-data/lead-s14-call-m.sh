#!/usr/bin/env bash
# Session-14 lead, call m: ncu (PC sampling: stall reasons) of GEMM1 production _m128usu2d beside the N-pair tile _m128pn on 32 x 2048 (one launch
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
NCU_SECTIONS="--section WarpStateStats --section SourceCounters"
timeout -s KILL $(left 150) ncu --clock-control none --kernel-name regex:'grouped_gemm1' $NCU_SECTIONS \
  \
  python3 deepgemm_side_by_side.py --profile --no-dg --module moe_kernels.fatbin --shapes 2 \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128pn > /tmp/logs/ncu-stalls.log 2>&1
stamp "ncu rc $?"
cp /tmp/logs/ncu-stalls.log $OUT/
grep -aE "^  grouped|Stall|stall_|smsp__pcsamp|Warp Cycles" /tmp/logs/ncu-stalls.log | cut -c1-150 | head -60
