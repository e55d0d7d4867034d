#!/usr/bin/env bash
# Session-12 lead, call D: the certified router, hi chains of one K tile, bound 2^-17, fp32 key bounds; ncu sections of the fast logits: GPU tests of the engine first (new router
# tests), ncu durations of the route kernels, DeepSeek-V3 FP8 4096/16384 with the tc2w router as a variant, stage
# profile, then the whole GPU suite.
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
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
junit() { local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree "$@" > /tmp/logs/$n.log 2>&1)
  stamp "$n rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/$n.log | tr -s ' ' | tr '\n' ' ')"; }
junit router 120 --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterChoosesTheExpertsOfTheFp64Router \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#certifiedRouterFallsBackToTheFp64RouterOnTies \
  --select-method=dev.sparkmoe.gpu.GpuMoeEngineGpuTest#tensorCoreAndSimtRouterLogitsRouteIdentically
grep -a "router cert\|router kernels\|✘\|Exception\|expected" /tmp/logs/router.log | head -30
(cd /tmp/w && timeout -s KILL $(left 90) ncu --graph-profiling node -k regex:"moe_route|moe_router" \
   --metrics gpu__time_duration.sum --csv java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
   --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 1 --warmup 0 --warmup-ms 0 > /tmp/logs/ncu.csv 2>/tmp/logs/ncu.err)
stamp "ncu rc $?"
python3 - <<'PY'
import csv, collections
d = collections.defaultdict(list)
try:
    rows = [r for r in csv.reader(open("/tmp/logs/ncu.csv")) if len(r) > 10]
    h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value")
    for r in rows[1:]: d[r[ki].split("(")[0]].append(float(r[vi].replace(",", "")) / 1000)
    print("ncu", " | ".join(f"{k} {sorted(x)[len(x)//2]:.1f}us x{len(x)}" for k, x in sorted(d.items())))
except Exception as e: print("ncu parse failed", e)
PY
for r in 1 2; do
  (cd /tmp/w && timeout -s KILL $(left 100) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 --variant 'sparkmoe.gpu.routerKernel=tc2w' > /tmp/logs/bench-r$r.log 2>&1)
  stamp "bench r$r rc $?"
done
(cd /tmp/w && timeout -s KILL $(left 120) ncu --graph-profiling node -k regex:"moe_router_logits_bf16x3" --launch-count 1 \
   --section SpeedOfLight --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy --section InstructionStats \
   java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
   --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 1 --warmup 0 --warmup-ms 0 > /tmp/logs/ncu-detail.txt 2>&1)
stamp "ncu detail rc $?"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
for f in /tmp/logs/bench-*.log; do echo "== $f"; grep -E "^deepseek|variant" $f | cut -c1-170; done
grep -aE "router:" /tmp/logs/bench-*.log
grep -aE "Duration|Throughput|Issue Slots|Executed Ipc|Achieved Occupancy|Registers|Stall|Pipe|L2 Cache Throughput|DRAM Throughput|Warp Cycles|Theoretical Occ|Block Limit|One or More|No Eligible" /tmp/logs/ncu-detail.txt | head -40
