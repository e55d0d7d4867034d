#!/usr/bin/env bash
# Session-12 lead, call B: the dispatch layout with <= 128 chunks and prefetched entries (new) against head 5999972
# (old): ncu durations of the layout kernels, DeepSeek-V3 FP8 4096/16384 in alternating JVMs (new also with the
# gatherRows and tc3k16-router variants), then the GPU suite on new.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-560}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wo /tmp/logs/* && mkdir -p /tmp/w /tmp/wo
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/classes-old.tar.xz -C /tmp/wo
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
for v in old new; do
  CP=$([ $v = new ] && echo $NEW || echo $OLD)
  (cd /tmp/w && timeout -s KILL $(left 90) ncu --graph-profiling node -k regex:"moe_dispatch|moe_route|moe_router|moe_combine" \
     --metrics gpu__time_duration.sum --csv java -Xmx48g -cp "$CP:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
     --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 1 --warmup 0 --warmup-ms 0 > /tmp/logs/ncu-$v.csv 2>/tmp/logs/ncu-$v.err)
  stamp "ncu $v rc $?"
done
bench() { local n=$1 cp=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left 100) java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "$@" > /tmp/logs/bench-$n.log 2>&1)
  stamp "bench $n rc $?"; }
bench old1 $OLD
bench new1 $NEW --variant 'sparkmoe.gpu.gatherRows=true' --variant 'sparkmoe.gpu.routerKernel=tc3k16'
bench old2 $OLD
bench new2 $NEW
(cd /tmp/w && timeout -s KILL $(left 200) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
python3 - <<'PY'
import csv, collections
for v in ("old", "new"):
    d = collections.defaultdict(list)
    try:
        rows = [r for r in csv.reader(open(f"/tmp/logs/ncu-{v}.csv")) if len(r) > 10]
        h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value")
        for r in rows[1:]:
            d[r[ki].split("(")[0]].append(float(r[vi].replace(",", "")) / 1000)
    except Exception as e:
        print(v, "ncu parse failed", e); continue
    print(v, " | ".join(f"{k} {sorted(x)[len(x)//2]:.1f}us x{len(x)}" for k, x in sorted(d.items())))
PY
for f in /tmp/logs/bench-*.log; do echo "== $f"; grep -E "^deepseek|variant|sparkmoe" $f | cut -c1-160; done
