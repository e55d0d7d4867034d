#!/usr/bin/env bash
# Session-13 lead, call I: the certified router's fallback launches walk the device-side list (4 token tiles for the
# fp64 logits, 2 x SMs blocks for the selection) instead of grids sized for every token. Certified tests (the ties
# test now 2100 tokens: both loops run), ncu of the list kernels old vs new, DeepSeek-V3 FP8 4096/16384 in JVMs
# alternating old (f68e580) and new.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wo /tmp/logs/* && mkdir -p /tmp/w /tmp/wo
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/old-classes.tar.xz -C /tmp/wo
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
CP="gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB"
SEL="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
(cd /tmp/w && timeout -s KILL $(left 120) java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree $SEL > /tmp/logs/cert-tests.log 2>&1)
stamp "cert tests rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/cert-tests.log | tr -s ' ' | tr '\n' ' ')"
for v in old new; do
  cp=$NEW; [ $v = old ] && cp=$OLD
  (cd /tmp/w && timeout -s KILL $(left 60) ncu --kernel-name regex:"_list|topk_certified" --launch-skip 6 --launch-count 4 --section SpeedOfLight --section LaunchStats \
    java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu-$v.log 2>&1)
  stamp "ncu $v rc $?"
done
for r in 1 2; do for v in old new; do
  cp=$NEW; [ $v = old ] && cp=$OLD
  (cd /tmp/w && timeout -s KILL $(left 50) java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 > /tmp/logs/ds-$v-r$r.log 2>&1)
  stamp "ds $v r$r rc $?"
done; done
(cd /tmp/w && timeout -s KILL $(left 40) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile > /tmp/logs/prof-new.log 2>&1)
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)|all ties" /tmp/logs/cert-tests.log | cut -c1-200
for v in old new; do echo "== ncu $v"; grep -aE "^  moe_|Duration" /tmp/logs/ncu-$v.log | cut -c1-110; done
for f in /tmp/logs/ds-*.log; do echo "== $f"; grep -hE "^deepseek-v3 +fp8 +(4096|16384)" $f | cut -c1-140; done
grep -h stages /tmp/logs/prof-new.log | cut -c1-200
