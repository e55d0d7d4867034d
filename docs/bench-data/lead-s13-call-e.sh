#!/usr/bin/env bash
# Session-13 lead, call E: certwg v2 (consumers split the next stage's x while their MMAs run; producer only copies):
# certified tests, memcheck/synccheck, ncu, --profile, bench with certwg as the variant (two JVMs), Qwen3 too.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-480}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
CP="gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB"
SEL="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
(cd /tmp/w && timeout -s KILL $(left 120) java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree $SEL > /tmp/logs/cert-tests.log 2>&1)
stamp "cert tests rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/cert-tests.log | tr -s ' ' | tr '\n' ' ')"
(cd /tmp/w && timeout -s KILL $(left 60) ncu --kernel-name regex:bf16x3_wg --launch-skip 2 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section InstructionStats \
    java -Xmx48g -Dsparkmoe.gpu.routerKernel=certwg -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu.log 2>&1)
stamp "ncu rc $?"
B() { local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g "${JOPT[@]}" -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$n.log 2>&1)
  stamp "$n rc $?"; }
JOPT=(-Dsparkmoe.gpu.routerKernel=certwg)
B prof 60 --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile
JOPT=()
V=(--variant "sparkmoe.gpu.routerKernel=certwg")
B ds-r1 80 --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
B ds-r2 80 --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
B others 80 --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8 --tokens 512,4096 --runs 20 "${V[@]}"
san() { local n=$1 tool=$2 cap=$3 sel=$4
  (cd /tmp/w && timeout -s KILL $(left $cap) compute-sanitizer --tool $tool --target-processes all --print-limit 20 --error-exitcode 99 \
     java -Xmx24g -Dsparkmoe.gpu.routerKernel=certwg -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary $sel > /tmp/logs/$n.log 2>&1)
  stamp "$n ($tool) rc $?: $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ') $(grep -aE 'ERROR SUMMARY' /tmp/logs/$n.log | tail -1)"; }
S1="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
san memcheck memcheck 100 "$S1"
san synccheck synccheck 80 "$S1"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)|\[router certwg" /tmp/logs/cert-tests.log | cut -c1-200
grep -h "stages" /tmp/logs/prof.log | cut -c1-200
grep -aE "Duration|Elapsed Cycles|SM Frequency|Compute \(SM\) Throughput|Issue Slots|Warp Cycles Per Issued|Executed Instructions  " /tmp/logs/ncu.log | head -8
for f in /tmp/logs/ds-r1.log /tmp/logs/ds-r2.log /tmp/logs/others.log; do echo "== $f"; grep -hE "^(deepseek|qwen|mixtral)|variant|router:" $f | cut -c1-200; done
