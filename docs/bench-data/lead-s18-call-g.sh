#!/usr/bin/env bash
# Session-18 lead, call g: Tile kDynamic 2 (_m128usu2dh, BF16 _dh) - the claiming tiles' producer hand-over with the
# static stride - beside the static and claiming production GEMM1s on layer-like rows (Mixtral 4096 / 32768,
# DeepSeek-V3 4096 / 16384), two processes; check first.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs && rm -rf /tmp/logs/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader > $OUT/env.txt
VAR=$G/var/moe_kernels.fatbin
cd $G/../scripts/bench
K="grouped_gemm1_swiglu_fp8_m128usu2dh,grouped_gemm1_swiglu_bf16_dh,grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_bf16_d"
timeout -s KILL $(left 90) python3 gemm_bench.py check --module $VAR --kernels $K --out /tmp/logs > /tmp/logs/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' /tmp/logs/check.log)"
SKIPS=$(python3 -c "
import gemm_bench as g
want={'skip','m128usu2','m128usu2d','m128usu2dh','d','dh'}
print(','.join(t for t in ('skip','noskip','lookahead','baseline')+g.V4 if t not in want))")
for rep in 1 2; do
  mkdir -p /tmp/logs/r$rep
  timeout -s KILL $(left 150) python3 gemm_bench.py layer --module $VAR --shapes 5,7,0,2 --runs 12 --skip "$SKIPS" --out /tmp/logs/r$rep > /tmp/logs/layer_$rep.log 2>&1
  stamp "layer $rep rc $?"
done
cp /tmp/logs/check.log $OUT/; for r in 1 2; do cp /tmp/logs/r$r/gemm_layer.json $OUT/gemm_layer_$r.json; cp /tmp/logs/layer_$r.log $OUT/; done
echo "==== check"; grep -h '"ok": false' /tmp/logs/check.log | cut -c1-300 | head; grep -h "^CHECK" /tmp/logs/check.log
python3 - <<'PY'
import json
rs = [json.load(open(f'/tmp/logs/r{r}/gemm_layer.json'))['results'] for r in (1, 2)]
for a, b in zip(*rs):
    print(a['shape'][:80])
    for k in a:
        if isinstance(a[k], dict) and 'ms' in a[k]:
            print(f"    {k:44s} {a[k]['ms']:8.4f} {b.get(k, {}).get('ms', float('nan')):8.4f}")
PY
