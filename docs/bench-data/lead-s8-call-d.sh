#!/usr/bin/env bash
# Session-8 lead, call d (after the Spark calls; the JRE is in /tmp/rt): the full GPU suite on db84e81 (first run of
# @GpuTest on a GPU), twice DecodePathGpuTest more (flake rate of the FP8 checks on tiny/mid DeepSeek).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rtg && tar -xJf $P/deps-1.tar.xz -C /tmp/rtg && rm -rf /tmp/w && mkdir -p /tmp/w && tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
(cd /tmp/w && MOE_RUNTIME=/tmp/rtg timeout -s KILL 200 bash scripts/gpu-test.sh > /tmp/test.log 2>&1)
stamp "gpu tests rc $?"
for i in 1 2; do
(cd /tmp/w && MOE_RUNTIME=/tmp/rtg MOE_TEST_REPORTS=/tmp/rep$i timeout -s KILL 60 bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/test-decode$i.log 2>&1)
stamp "decode tests $i rc $?"
done
sed 's/\x1b\[[0-9;]*m//g' /tmp/test.log | xz -9 > $OUT/gpu-tests.log.xz
for i in 1 2; do sed 's/\x1b\[[0-9;]*m//g' /tmp/test-decode$i.log | xz -9 > $OUT/decode$i.log.xz; done
grep -aE "✘|tests (successful|failed|found|skipped)" /tmp/test*.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220
