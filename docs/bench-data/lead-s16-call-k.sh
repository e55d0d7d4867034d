#!/usr/bin/env bash
# Session-16 lead, call k: the static BF16 GEMM2 looking its next unit up while the unit's first K block computes
# (grouped_gemm2_bf16_l[_ybf16], Tile kLookahead) beside production grouped_gemm2_bf16[_ybf16]: check, the down shape
# (torch._grouped_mm peer), layer-like down rows at 4096 tokens.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
DEADLINE=${DEADLINE:-200}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs
B=$G/../scripts/bench; NEW=$G/new6/moe_kernels.fatbin
cd $B
stamp start
timeout -s KILL $(left 60) python3 gemm_bench.py check --module $NEW --kernels grouped_gemm2_bf16_l,grouped_gemm2_bf16_l_ybf16 --out /tmp/logs > $OUT/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' $OUT/check.log)"
for r in 1 2; do
  timeout -s KILL $(left 50) python3 gemm_bench.py bench --bf16-only --module $NEW --skip grouped_gemm2_bf16_u --shapes 3 --runs 30 --out /tmp/logs > /tmp/logs/bench-$r.log 2>&1
  stamp "bench $r rc $?"
done
SKIPS="noskip,lookahead,baseline,$(python3 -c "import gemm_bench as g; print(','.join(v for v in g.V4 if v != 'l'))")"
timeout -s KILL $(left 60) python3 gemm_bench.py layer --module $NEW --shapes 1 --runs 20 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
stamp "layer rc $?"
cp /tmp/logs/bench-*.log /tmp/logs/layer.log $OUT/
grep -h '"kernel"' $OUT/check.log | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l); print(r['kernel'][-28:], 'ok' if r.get('ok') else 'FAIL', {k:r.get(k) for k in ('err','bitwise_repeat','no_skip','large','error') if k in r})"
cat /tmp/logs/bench-*.log /tmp/logs/layer.log | grep "^{" | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l)
    if 'shape' not in r: continue
    print(r['shape'][:60]); [print('   ',k,v.get('ms'),v.get('tflops'),v.get('error','')) for k,v in r.items() if isinstance(v,dict)]"
