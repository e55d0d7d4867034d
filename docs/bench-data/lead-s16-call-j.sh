#!/usr/bin/env bash
# Session-16 lead, call j: production GEMM2 _m128u(_ybf16) with the next-unit lookup during the unit's first wgmma
# group (Tile kLookahead). The GPU suite on the new classes, then layers in JVMs alternating old (d137ffa) and new
# classes: DeepSeek-V3 FP8 4096 / 16384, Mixtral and Qwen3 FP8 4096.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$P/.." && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-570}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wo /tmp/logs/* && mkdir -p /tmp/w /tmp/wo
R=$P/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w; tar -xJf $R/old-classes.tar.xz -C /tmp/wo
export PATH=/tmp/rt/jre/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; } > $OUT/env.txt 2>&1
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
(cd /tmp/w && timeout -s KILL $(left 220) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
bench() {  # bench VERSION TAG ARGS...
  local v=$1 tag=$2; shift 2; local cp=$NEW; [ $v = old ] && cp=$OLD
  (cd /tmp/w && timeout -s KILL $(left 70) java -Xmx64g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$tag-$v.log 2>&1)
  stamp "$tag $v rc $?"
}
for r in 1 2; do for v in old new; do
  bench $v ds8-r$r --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30
  bench $v mq8-r$r --shapes mixtral-8x7b,qwen3-30b-a3b --precision fp8 --tokens 4096 --runs 30
done; done
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
for f in /tmp/logs/ds8-*.log /tmp/logs/mq8-*.log ; do echo "== $f"; grep -hE "^(deepseek-v3|mixtral-8x7b|qwen3-30b-a3b) +(fp8|native)" $f | cut -c1-160; done
