#!/usr/bin/env bash
# Session-14 lead, call i: compute-sanitizer memcheck and synccheck over gemm_bench.py check of the 3-stage production
# GEMM2 (_m128u with bf16 Y and with fp32 Y: ragged experts, null counts, the large case, a repeat launch).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs && rm -f /tmp/logs/*
cp $G/../scripts/bench/gemm_bench.py $G/
cd $G
K="grouped_gemm2_fp8_m128u_ybf16,grouped_gemm2_fp8_m128u"
for tool in memcheck synccheck; do
  timeout -s KILL $(left 180) compute-sanitizer --tool $tool --print-limit 20 --error-exitcode 99 \
    python3 gemm_bench.py check --module moe_kernels.fatbin --kernels $K --out /tmp/logs > /tmp/logs/$tool.log 2>&1
  stamp "$tool rc $?: $(grep -h '^CHECK' /tmp/logs/$tool.log) $(grep -aE 'ERROR SUMMARY' /tmp/logs/$tool.log | tail -1)"
done
cp /tmp/logs/*.log $OUT/
grep -h '"kernel"' /tmp/logs/memcheck.log | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l); print(r['kernel'][-30:], 'ok' if r.get('ok') else 'FAIL', {k:r.get(k) for k in ('err','bitwise_repeat','no_skip','large','error') if k in r})"
