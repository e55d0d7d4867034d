#!/usr/bin/env bash
# Session-10 lead, call I: compute-sanitizer over the GPU tests on the final tree (the first sanitizer run of the project):
# memcheck over GpuMoeEngineGpuTest#gpuMatchesCpu (grouped path, every family and precision, 1..32768 tokens of the
# tiny shapes, mid-deepseek) and DecodePathGpuTest (small-batch path), racecheck and synccheck over DecodePathGpuTest.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
compute-sanitizer --version | tail -1 | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
san() { # name tool cap selector
  local n=$1 tool=$2 cap=$3 sel=$4
  (cd /tmp/w && timeout -s KILL $(left $cap) compute-sanitizer --tool $tool --target-processes all --print-limit 20 --error-exitcode 99 \
     java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
     org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary $sel > /tmp/logs/$n.log 2>&1)
  local rc=$?
  stamp "$n ($tool) rc $rc: $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ') $(grep -aE 'ERROR SUMMARY' /tmp/logs/$n.log | tail -1)"
}
san decode-memcheck memcheck 150 "--select-class=dev.sparkmoe.gpu.DecodePathGpuTest"
san grouped-memcheck memcheck 260 "--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#gpuMatchesCpu"
san decode-racecheck racecheck 150 "--select-class=dev.sparkmoe.gpu.DecodePathGpuTest"
san decode-synccheck synccheck 100 "--select-class=dev.sparkmoe.gpu.DecodePathGpuTest"
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
for f in /tmp/logs/*.log; do echo "== $f"; grep -aE "========= (Invalid|Race|Barrier|ERROR|Error|Program hit)|Hazard|ERROR SUMMARY|tests (successful|failed)" $f | sort | uniq -c | head -12; done
