#!/usr/bin/env bash
# Session-17 lead, call e: the BF16 GEMM1 on 2-CTA pair units with the weight tile multicast (grouped_gemm1_swiglu_bf16_dc,
# Tile kPairB as v8's FP8 _m128usu2dc) beside production _d: check, SASS, the gate+up shapes with the torch._grouped_mm
# peer (2 processes), layer-like DeepSeek-V3 gate+up rows.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs && rm -rf /tmp/logs/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader > $OUT/env.txt 2>&1
B=$G/../scripts/bench; VAR=$G/var4/moe_kernels.fatbin
cd $B
timeout -s KILL $(left 90) python3 gemm_bench.py check --module $VAR --kernels grouped_gemm1_swiglu_bf16_dc,grouped_gemm1_swiglu_bf16_d --out /tmp/logs > $OUT/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' $OUT/check.log)"
for k in grouped_gemm1_swiglu_bf16_d grouped_gemm1_swiglu_bf16_dc; do
  cuobjdump -sass -fun $k $VAR > /tmp/logs/sass_$k.txt 2>&1
  stamp "sass $k: $(grep -c 'GMMA' /tmp/logs/sass_$k.txt) xGMMA, $(grep -cE 'STL|LDL' /tmp/logs/sass_$k.txt) local, $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' /tmp/logs/sass_$k.txt) instr"
done
for r in 1 2; do
  timeout -s KILL $(left 100) python3 gemm_bench.py bench --bf16-only --module $VAR --skip grouped_gemm1_swiglu_bf16_u,grouped_gemm1_swiglu_bf16 --shapes 6,2,1,5,4 --runs 20 --out /tmp/logs > /tmp/logs/bench_bf16_$r.log 2>&1
  stamp "bf16 bench $r rc $?"
done
SKIPS=$(python3 -c "import gemm_bench as g; print(','.join(t for t in ('skip','noskip','lookahead','baseline')+g.V4 if t not in ('d','dc')))" 2>/dev/null)
timeout -s KILL $(left 90) python3 gemm_bench.py layer --module $VAR --shapes 0,4 --runs 20 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
stamp "layer rc $?"
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> $OUT/env.txt 2>&1
cp /tmp/logs/bench_bf16_*.log /tmp/logs/layer.log $OUT/ 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== check"; grep -h '"kernel"' $OUT/check.log | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l); print(r['kernel'][-30:], 'ok' if r.get('ok') else 'FAIL', {k:r.get(k) for k in ('err','bitwise_repeat','no_skip','large','error') if k in r})"
echo "==== bench / layer"; cat /tmp/logs/bench_bf16_*.log /tmp/logs/layer.log | grep -v "^$" | python3 -c "
import sys,json
for l in sys.stdin:
    try: r=json.loads(l)
    except Exception: continue
    print(r.get('shape'))
    for k,v in r.items():
        if isinstance(v,dict): print('   ',k, {a:b for a,b in v.items() if a in ('tflops','ms','error')})
" 2>&1 | head -60
