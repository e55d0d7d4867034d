#!/usr/bin/env bash
# Session-12 lead, call K: the certified router's error model checked - fast logits against tc2w's within the bound
# (random inputs and inputs with channels x1000) - plus GpuMoeEngineGpuTest (the engine's grouped-path tests).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
(cd /tmp/w && timeout -s KILL 150 java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree \
  --select-class=dev.sparkmoe.gpu.GpuMoeEngineGpuTest > /tmp/logs/engine.log 2>&1)
echo "rc $?" | tee $OUT/call.log
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/engine.log
cp /tmp/logs/engine.log $OUT/
grep -aE "✘|tests (successful|failed|found)|router cert" /tmp/logs/engine.log | cut -c1-220 | tee -a $OUT/call.log
