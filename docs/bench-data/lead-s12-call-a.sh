#!/usr/bin/env bash
# Session-12 lead, call A: head 5999972 (kernels of 8205d3b): GPU suite, SASS counts, memcheck + synccheck over
# DecodePathGpuTest, then a DeepSeek-V3 FP8 4096 stage profile (baseline for the router work) and the 16-token points.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-560}
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
(cd /tmp/w && timeout -s KILL $(left 220) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
timeout 60 cuobjdump --dump-sass $NEW/dev/sparkmoe/kernels/moe_kernels.fatbin > /tmp/logs/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/logs/sass.txt | sort > /tmp/logs/sass-counts.txt
echo "SASS: $(grep -c ' HGMMA' /tmp/logs/sass-counts.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' /tmp/logs/sass-counts.txt) kernel/QGMMA pairs" | tee -a $OUT/call.log
san() { local n=$1 tool=$2 cap=$3 sel=$4
  (cd /tmp/w && timeout -s KILL $(left $cap) compute-sanitizer --tool $tool --target-processes all --print-limit 20 --error-exitcode 99 \
     java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
     org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary $sel > /tmp/logs/$n.log 2>&1)
  stamp "$n ($tool) rc $?: $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ') $(grep -aE 'ERROR SUMMARY' /tmp/logs/$n.log | tail -1)"; }
san decode-memcheck memcheck 100 "--select-class=dev.sparkmoe.gpu.DecodePathGpuTest"
san decode-synccheck synccheck 80 "--select-class=dev.sparkmoe.gpu.DecodePathGpuTest"
(cd /tmp/w && timeout -s KILL $(left 90) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile > /tmp/logs/ds-profile.log 2>&1)
stamp "ds profile rc $?"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
cat /tmp/logs/ds-profile.log | tail -40 | cut -c1-200
