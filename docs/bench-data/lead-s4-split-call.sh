#!/usr/bin/env bash
# Session-4 lead: GEMM1 _m128usu2h (spill units split along N) - gemm_bench check, layer shapes interleaved against
# _m128usu2, GPU tests with _m128usu2h as production, moe bench DeepSeek-V3 FP8 with the new and (class overlay) the
# old production, alternating.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-190}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait) &
UNPACK=$!
wait $UNPACK
cd /tmp/w/scripts/bench; F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
stamp check
timeout -s KILL $(left 40) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2h,grouped_gemm1_swiglu_fp8_m128usu2 > $OUT/check.log 2>&1
stamp "check rc $? ok=$(grep -c '"ok": true' $OUT/check.log) bad=$(grep -c '"ok": false' $OUT/check.log)"
grep -E '"ok": false' $OUT/check.log | cut -c1-300
export PATH=/tmp/rt/jre/bin:$PATH
stamp "gpu tests"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 75) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
stamp "gpu tests rc $?"
timeout -s KILL $(left 30) python3 gemm_bench.py layer --module $F --fp8-only \
  --skip noskip,pf,pfs,m128,m128p,m128s,m128n128,lookahead,u,m128u,m128us,m128usp,m128usu4,m128uu2,m128usu2 --out /tmp/logs > $OUT/layer.log 2>&1
stamp "layer rc $?"
mb() { # label overlay
  echo "### $1" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left 30) java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile >> $OUT/moe.log 2>&1)
  stamp "moe $1 rc $?"
}
mb new ""; mb old $P/alt-old; mb new ""; mb old $P/alt-old
grep -aE "✘|tests (successful|failed)" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
grep -E "^(###|deepseek)|stages" $OUT/moe.log | cut -c1-220
grep -iE "gate\+up|usu2" $OUT/layer.log | tail -12 | cut -c1-220
