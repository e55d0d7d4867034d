#!/usr/bin/env bash
# helper gather6, session 6: GEMM1 gathering its A rows (_m128usu2g, sparkmoe.gpu.gatherRows).
# gemm_bench check (gather + production GEMM1), GPU tests (whole suite incl. the gather test), gemm_bench layer
# (production vs gather GEMM1 on the layer shapes, interleaved), moe bench DeepSeek-V3 FP8 in 4 JVMs alternating
# (A: ours = scatter, variant = gather; B: ours = gather, variant = scatter).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > $OUT/env.txt
cd /tmp/w/scripts/bench; F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
stamp check
timeout -s KILL $(left 60) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2g,grouped_gemm1_swiglu_fp8_m128usu2 > $OUT/check.log 2>&1
rc=$?; ok=$(grep -c '"ok": true' $OUT/check.log); bad=$(grep -c '"ok": false' $OUT/check.log)
stamp "check rc $rc ok=$ok bad=$bad"
grep -E '"ok": false|CHECK' $OUT/check.log | cut -c1-400
if [ $rc -ne 0 ] || [ $ok -lt 4 ]; then stamp "check failed: stopping"; exit 3; fi
export PATH=/tmp/rt/jre/bin:$PATH
stamp "gpu tests"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 200) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
stamp "gpu tests rc $?"
timeout -s KILL $(left 40) python3 gemm_bench.py layer --module $F --fp8-only \
  --skip skip,noskip,pf,pfs,m128,m128p,m128s,m128n128,lookahead,u,m128u,m128us,m128usp,m128usu4,m128uu2,m128usu2h --out /tmp/logs > $OUT/layer.log 2>&1
stamp "layer rc $?"
mb() { # label, extra JVM flag, variant
  echo "### $1" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left 50) java -Xmx48g $2 -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile --variant "$3" >> $OUT/moe.log 2>&1)
  stamp "moe $1 rc $?"
}
mb "A1 ours=scatter variant=gather" "" "sparkmoe.gpu.gatherRows=true"
mb "B1 ours=gather variant=scatter" "-Dsparkmoe.gpu.gatherRows=true" "sparkmoe.gpu.gatherRows=false"
mb "A2 ours=scatter variant=gather" "" "sparkmoe.gpu.gatherRows=true"
mb "B2 ours=gather variant=scatter" "-Dsparkmoe.gpu.gatherRows=true" "sparkmoe.gpu.gatherRows=false"
cp /tmp/logs/gemm_layer.json $OUT/ 2>/dev/null
grep -aE "gather rows|✘|tests (successful|failed)" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
grep -aE "^(###|deepseek)|stages|variant" $OUT/moe.log | cut -c1-330
grep -iE "usu2" $OUT/layer.log | tail -8 | cut -c1-200
