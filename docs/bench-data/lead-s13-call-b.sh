#!/usr/bin/env bash
# Session-13 lead, call B: the warpgroup certified router (certwg) - certified-router GPU tests for cert and certwg,
# DeepSeek-V3 FP8 4096/16384 with certwg as a variant in two JVMs, --profile per kernel, Qwen3/Mixtral FP8 4096,
# ncu of both logits kernels, memcheck/synccheck over the certified tests.
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
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
CP="gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB"
SEL="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
(cd /tmp/w && timeout -s KILL $(left 120) java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree $SEL > /tmp/logs/cert-tests.log 2>&1)
stamp "cert tests rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/cert-tests.log | tr -s ' ' | tr '\n' ' ')"
B() { local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g "${JOPT[@]}" -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$n.log 2>&1)
  stamp "$n rc $?"; }
JOPT=()
V=(--variant "sparkmoe.gpu.routerKernel=certwg")
B ds-r1 80 --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
B ds-r2 80 --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "${V[@]}"
B prof-cert 60 --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile
JOPT=(-Dsparkmoe.gpu.routerKernel=certwg)
B prof-certwg 60 --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile
JOPT=()
B others 80 --shapes qwen3-30b-a3b,mixtral-8x7b --precision fp8 --tokens 512,4096 --runs 20 "${V[@]}"
(cd /tmp/w && timeout -s KILL $(left 90) ncu --kernel-name regex:moe_router_logits_bf16x3 --launch-count 4 --section SpeedOfLight --section Occupancy \
  java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 0 "${V[@]}" > /tmp/logs/ncu.log 2>&1)
stamp "ncu rc $?"
san() { local n=$1 tool=$2 cap=$3 sel=$4
  (cd /tmp/w && timeout -s KILL $(left $cap) compute-sanitizer --tool $tool --target-processes all --print-limit 20 --error-exitcode 99 \
     java -Xmx24g -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary $sel > /tmp/logs/$n.log 2>&1)
  stamp "$n ($tool) rc $?: $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ') $(grep -aE 'ERROR SUMMARY' /tmp/logs/$n.log | tail -1)"; }
S1="--select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterLogitsStayWithinTheirBound"
san memcheck memcheck 100 "$S1"
san synccheck synccheck 80 "$S1"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)|\[router" /tmp/logs/cert-tests.log | cut -c1-200
grep -hE "^deepseek-v3 +fp8 +(4096|16384)|^(qwen|mixtral)|router:|variant" /tmp/logs/ds-r*.log /tmp/logs/others.log | cut -c1-200
grep -hiE "router|top-k" /tmp/logs/prof-*.log | cut -c1-160
grep -aE "moe_router_logits|Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers" /tmp/logs/ncu.log | head -30
