#!/usr/bin/env bash
# Session-13 lead, call M: the review mend (lastRouterLogits downloads only the rows it returns): the certified-router
# GPU tests that read it.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/rt && rm -rf /tmp/w && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
cd /tmp/w && timeout -s KILL 150 /tmp/rt/jre/bin/java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router > $OUT/tests.log 2>&1
echo "rc $?"; sed 's/\x1b\[[0-9;]*m//g' $OUT/tests.log | grep -aE "✘|tests (successful|failed)|router certwg\] mid"
