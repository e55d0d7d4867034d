#!/usr/bin/env bash
# Session-13 lead, call C: certwg on 320 threads (2 producer warps, 200 registers): B = hi ping-pong (wait_group 1;
# ptxas warns it serializes the MMAs), C = the same with wait_group 0 per stage. Certified tests on B; --profile and
# bench (cert as ours, certwg as the variant) for B and C; ncu of the certwg logits kernel in B and C.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* /tmp/varC && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
cp -r $P/varC /tmp/varC
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
CP="gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB"
SEL="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
(cd /tmp/w && timeout -s KILL $(left 120) java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree $SEL > /tmp/logs/cert-tests.log 2>&1)
stamp "cert tests (B) rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/cert-tests.log | tr -s ' ' | tr '\n' ' ')"
B() { local n=$1 cap=$2 cp=$3; shift 3
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g "${JOPT[@]}" -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$n.log 2>&1)
  stamp "$n rc $?"; }
V=(--variant "sparkmoe.gpu.routerKernel=certwg")
JOPT=()
for r in 1 2; do
  B ds-B-r$r 80 $NEW --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
  B ds-C-r$r 80 /tmp/varC:$NEW --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
done
JOPT=(-Dsparkmoe.gpu.routerKernel=certwg)
B prof-B 60 $NEW --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile
B prof-C 60 /tmp/varC:$NEW --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile
for v in B C; do
  cp=$NEW; [ $v = C ] && cp=/tmp/varC:$NEW
  (cd /tmp/w && timeout -s KILL $(left 70) ncu --kernel-name regex:bf16x3_wg --launch-skip 2 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section ComputeWorkloadAnalysis --section LaunchStats \
    java -Xmx48g -Dsparkmoe.gpu.routerKernel=certwg -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu-$v.log 2>&1)
  stamp "ncu $v rc $?"
done
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)|\[router certwg" /tmp/logs/cert-tests.log | cut -c1-200
for f in /tmp/logs/ds-*.log; do echo "== $f"; grep -hE "^deepseek-v3 +fp8 +(4096|16384)|variant" $f | cut -c1-200; done
grep -h "stages" /tmp/logs/prof-*.log | cut -c1-200
for v in B C; do echo "== ncu $v"; grep -aE "Duration|Compute \(SM\) Throughput|Registers Per|Issue Slots Busy|Executed Ipc A|Warp Cycles Per Issued|Stall|One or More Eligible" /tmp/logs/ncu-$v.log | head -14; done
