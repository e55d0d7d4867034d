#!/usr/bin/env bash
# Session-13 lead, call J: the final head (7c69ef7; since fc7fd2f only comments, docs and a wrapped message): the GPU
# suite once more, and DeepSeek-V3 FP8 4096 / 16384 in one more JVM.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-300}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
(cd /tmp/w && timeout -s KILL $(left 200) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
(cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 > /tmp/logs/ds.log 2>&1)
stamp "ds rc $?"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
grep -hE "^deepseek-v3 +fp8 +(4096|16384)|router:" /tmp/logs/ds.log
