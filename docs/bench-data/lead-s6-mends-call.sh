#!/usr/bin/env bash
# Session-6 lead: verification of the review mends - the full GPU test suite on the final tree and gemm_bench check of
# the dynamic / gathering GEMM1 kernels.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-170}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
rm -rf /tmp/w && mkdir -p /tmp/w && tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp "gpu tests"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 110) bash scripts/gpu-test.sh > /tmp/test.log 2>&1)
stamp "gpu tests rc $?"
sed 's/\x1b\[[0-9;]*m//g' /tmp/test.log | xz -9 > $OUT/gpu-tests.log.xz
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
(cd /tmp/w/scripts/bench && timeout -s KILL $(left 40) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2gd,grouped_gemm1_swiglu_bf16_d > $OUT/check.log 2>&1)
stamp "check rc $? ok=$(grep -c '"ok": true' $OUT/check.log) bad=$(grep -c '"ok": false' $OUT/check.log)"
grep -aE "✘|tests (successful|failed)" /tmp/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
