#!/usr/bin/env bash
# helper gather6, session 6, call 2 (short: device budget): v6.1 _m128usu2g (mode 2) vs v6 _m128usu2g1 vs _m128usu2.
# gemm_bench check (gate), layer bench interleaved, moe bench A/B, the gather GPU test, moe bench A/B again.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-70}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
cd /tmp/w/scripts/bench; F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
stamp check
timeout -s KILL $(left 25) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2g,grouped_gemm1_swiglu_fp8_m128usu2g1,grouped_gemm1_swiglu_fp8_m128usu2 > $OUT/check.log 2>&1
rc=$?; ok=$(grep -c '"ok": true' $OUT/check.log); bad=$(grep -c '"ok": false' $OUT/check.log)
stamp "check rc $rc ok=$ok bad=$bad"
grep -E '"ok": false|CHECK' $OUT/check.log | cut -c1-300
if [ $rc -ne 0 ] || [ $ok -lt 7 ]; then stamp "check failed: stopping"; exit 3; fi
timeout -s KILL $(left 20) python3 gemm_bench.py layer --module $F --fp8-only \
  --skip skip,noskip,pf,pfs,m128,m128p,m128s,m128n128,lookahead,u,m128u,m128us,m128usp,m128usu4,m128uu2,m128usu2h --out /tmp/logs > $OUT/layer.log 2>&1
stamp "layer rc $?"; cp /tmp/logs/gemm_layer.json $OUT/ 2>/dev/null
export PATH=/tmp/rt/jre/bin:$PATH
mb() { # label, extra JVM flag, variant
  echo "### $1" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left 15) java -Xmx48g $2 -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile --variant "$3" >> $OUT/moe.log 2>&1)
  stamp "moe $1 rc $?"
}
mb "A1 ours=scatter variant=gather(v6.1)" "" "sparkmoe.gpu.gatherRows=true"
mb "B1 ours=gather(v6.1) variant=scatter" "-Dsparkmoe.gpu.gatherRows=true" "sparkmoe.gpu.gatherRows=false"
stamp "gpu test (gather)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 30) bash scripts/gpu-test.sh \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#gatheredGemm1RowsMatchTheCpuAndTheScatteredLayerBitwise > $OUT/test.log 2>&1)
stamp "gpu test rc $?"
mb "A2 ours=scatter variant=gather(v6.1)" "" "sparkmoe.gpu.gatherRows=true"
mb "B2 ours=gather(v6.1) variant=scatter" "-Dsparkmoe.gpu.gatherRows=true" "sparkmoe.gpu.gatherRows=false"
grep -aE "✘|tests (successful|failed)" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
grep -aE "^(###|deepseek)|variant \[" $OUT/moe.log | cut -c1-200
python3 -c "
import json
for r in json.load(open('/tmp/logs/gemm_layer.json'))['results']:
    print(r['shape'][:60], {k.split()[-1]: v.get('ms') for k, v in r.items() if k.startswith('grouped')})
" 2>/dev/null
