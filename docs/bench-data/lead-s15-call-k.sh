#!/usr/bin/env bash
# Session-15 lead, call k: carried descriptors on the 64-row dynamic FP8 GEMM2 (_udi_ybf16, Tile kIncDesc in the
# overlapped loop; production _ud_ybf16 where row blocks are mostly partial, e.g. DeepSeek-V3 at 4096 tokens):
# gemm_bench check, then the layer-like down rows at 4096 and 16384 tokens beside _ud_ybf16 and _m128u_ybf16 (2 runs).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs
cp $G/../scripts/bench/gemm_bench.py $G/
cd $G
stamp start
timeout -s KILL 90 python3 gemm_bench.py check --module moe_kernels.fatbin --kernels grouped_gemm2_fp8_udi_ybf16 --out /tmp/logs > $OUT/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' $OUT/check.log)"
KEEP="ud_ybf16 udi_ybf16 m128u_ybf16"
SKIPS=$(python3 -c "import gemm_bench as g; print(','.join(['skip','noskip','lookahead','baseline'] + [t for t in g.V4 if t not in '$KEEP'.split()]))")
for r in 1 2; do
  timeout -s KILL 150 python3 gemm_bench.py layer --module moe_kernels.fatbin --fp8-only --shapes 1,3 --runs 20 --skip "$SKIPS" --out /tmp/logs > $OUT/layer-$r.log 2>&1
  stamp "layer $r rc $?"
done
grep -h '"kernel"' $OUT/check.log | cut -c1-160
grep -h "ms" $OUT/layer-*.log | python3 -c "
import sys,json
for l in sys.stdin:
    try: r=json.loads(l)
    except Exception: continue
    print(r['shape'][:44], {k.split()[-1]:v['ms'] for k,v in r.items() if isinstance(v,dict) and 'ms' in v})"
# (After this call the carried descriptors became production in the overlapped loop too - TileDownFp8Uniform (_u,
# _u_ybf16) and TileDownFp8UniformDynamic (_ud, _ud_ybf16) - and the _udi_ybf16 entry point was removed.)
