#!/usr/bin/env bash
# Session-13 lead, call A: ad42321 (session 12's review mends, never run on a GPU): the GPU suite, SASS counts, then
# DeepSeek-V3 FP8 4096/16384 in two JVMs as this session's baseline (machine state).
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
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
(cd /tmp/w && timeout -s KILL $(left 240) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
F=$NEW/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 60 cuobjdump --dump-sass $F > /tmp/logs/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/logs/sass.txt | sort > /tmp/logs/sass-counts.txt
echo "SASS: $(grep -c ' HGMMA' /tmp/logs/sass-counts.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' /tmp/logs/sass-counts.txt) kernel/QGMMA pairs, $(grep -c 'Function :' /tmp/logs/sass.txt) functions" | tee -a $OUT/call.log
for r in 1 2; do
  (cd /tmp/w && timeout -s KILL $(left 70) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 --json /tmp/logs/ds-r$r.json > /tmp/logs/ds-r$r.log 2>&1)
  stamp "ds r$r rc $?"
done
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
grep -hE "^deepseek-v3 +fp8 +(4096|16384)|router|note" /tmp/logs/ds-r*.log | cut -c1-200
