#!/usr/bin/env bash
# Session-13 lead, call G: certwg with the two consumers taking turns at issuing their MMAs (named barriers), so one promotes while
# the other multiplies: ncu + --profile, bench (ours = certwg, variant = cert) in two JVMs, certified tests, memcheck/synccheck.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-500}
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
CP="gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB"
(cd /tmp/w && timeout -s KILL $(left 60) ncu --kernel-name regex:bf16x3_wg --launch-skip 2 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section InstructionStats \
    java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu.log 2>&1)
stamp "ncu rc $?"
B() { local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$n.log 2>&1)
  stamp "$n rc $?"; }
B prof 60 --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile
V=(--variant "sparkmoe.gpu.routerKernel=cert")
B ds-r1 80 --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
B ds-r2 80 --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
(cd /tmp/w && timeout -s KILL $(left 200) java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --select-class=dev.sparkmoe.gpu.GpuMoeEngineGpuTest > /tmp/logs/test.log 2>&1)
stamp "GpuMoeEngineGpuTest rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
san() { local n=$1 tool=$2 cap=$3 sel=$4
  (cd /tmp/w && timeout -s KILL $(left $cap) compute-sanitizer --tool $tool --target-processes all --print-limit 20 --error-exitcode 99 \
     java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary $sel > /tmp/logs/$n.log 2>&1)
  stamp "$n ($tool) rc $?: $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ') $(grep -aE 'ERROR SUMMARY' /tmp/logs/$n.log | tail -1)"; }
S1="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
san memcheck memcheck 100 "$S1"
san synccheck synccheck 80 "$S1"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
grep -a "\[router certwg" /tmp/logs/test.log | cut -c1-160
grep -h "stages" /tmp/logs/prof.log | cut -c1-200
grep -aE "Duration|Elapsed Cycles|SM Frequency|Compute \(SM\) Throughput|Warp Cycles Per Issued|Executed Instructions  " /tmp/logs/ncu.log | head -8
for f in /tmp/logs/ds-r1.log /tmp/logs/ds-r2.log; do echo "== $f"; grep -hE "^(deepseek|qwen|mixtral)|variant|router:" $f | cut -c1-200; done
