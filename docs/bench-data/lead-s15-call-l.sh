#!/usr/bin/env bash
# Session-15 lead, call l: carried descriptors also in the overlapped loop of the 64-row FP8 GEMM2 (production _u /
# _u_ybf16, and _ud / _ud_ybf16 with gemmDynamicUnits=all). The GPU suite on the new classes, then the FP8 layers
# (DeepSeek-V3 4096 / 16384, Mixtral and Qwen3 4096) in JVMs alternating old (00ac091) and new classes.
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
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; } > $OUT/env.txt 2>&1
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
(cd /tmp/w && timeout -s KILL $(left 200) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
for r in 1 2; do for v in old new; do
  cp=$NEW; [ $v = old ] && cp=$OLD
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 > /tmp/logs/ds-$v-r$r.log 2>&1)
  stamp "ds $v r$r rc $?"
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes mixtral-8x7b,qwen3-30b-a3b --precision fp8 --tokens 4096 --runs 30 > /tmp/logs/mq-$v-r$r.log 2>&1)
  stamp "mq $v r$r rc $?"
done; done
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
for f in /tmp/logs/ds-*.log /tmp/logs/mq-*.log; do echo "== $f"; grep -hE "^(deepseek-v3|mixtral-8x7b|qwen3-30b-a3b) +fp8" $f | cut -c1-140; done
