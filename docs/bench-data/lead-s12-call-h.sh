#!/usr/bin/env bash
# Session-12 lead, call H: the certified router's bound at 76 x 2^-23 (was 2^-16): router tests, ncu durations,
# DeepSeek-V3 FP8 4096/16384 cert vs tc2w in four JVMs (alternating base and variant).
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
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
junit() { local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree "$@" > /tmp/logs/$n.log 2>&1)
  stamp "$n rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ')"; }
(cd /tmp/w && timeout -s KILL $(left 90) ncu --graph-profiling node -k regex:"moe_route|moe_router" \
   --metrics gpu__time_duration.sum --csv java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
   --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 1 --warmup 0 --warmup-ms 0 > /tmp/logs/ncu.csv 2>/tmp/logs/ncu.err)
stamp "ncu rc $?"
python3 - <<'PY' | tee -a $OUT/call.log
import csv, collections
d = collections.defaultdict(list)
try:
    rows = [r for r in csv.reader(open("/tmp/logs/ncu.csv")) if len(r) > 10]
    h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value")
    for r in rows[1:]: d[r[ki].split("(")[0]].append(float(r[vi].replace(",", "")) / 1000)
    print("ncu", " | ".join(f"{k} {sorted(x)[len(x)//2]:.1f}us x{len(x)}" for k, x in sorted(d.items())))
except Exception as e: print("ncu parse failed", e)
PY
bench() { local n=$1 base=$2 other=$3
  (cd /tmp/w && timeout -s KILL $(left 100) java -Xmx48g -Dsparkmoe.gpu.routerKernel=$base -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 --variant "sparkmoe.gpu.routerKernel=$other" > /tmp/logs/bench-$n.log 2>&1)
  stamp "bench $n rc $?"; }
bench a cert tc2w
bench b tc2w cert
bench c cert tc2w
bench d tc2w cert
junit router 120 --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#allTokensOnTheSameExperts
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/router.log | cut -c1-220 | head -20
grep -a "router cert" /tmp/logs/router.log
for f in /tmp/logs/bench-*.log; do echo "== $f"; grep -E "^deepseek|variant|router:" $f | cut -c1-170; done
