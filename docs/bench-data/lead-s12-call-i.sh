#!/usr/bin/env bash
# Session-12 lead, call I: the padding rows no longer zeroed (only their routing weights and FP8 scales) + the
# certificate's finiteness checks (new) against a7cf094 (old): ncu of the dispatch kernels, DeepSeek-V3 FP8 and BF16
# 4096 / 16384 in alternating JVMs with a stage profile, then the whole GPU suite on new.
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
  (cd /tmp/w && timeout -s KILL $(left 60) ncu --graph-profiling node -k regex:"moe_dispatch" \
     --metrics gpu__time_duration.sum --csv java -Xmx48g -cp "$CP:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
     --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 1 --warmup 0 --warmup-ms 0 > /tmp/logs/ncu-$v.csv 2>/tmp/logs/ncu-$v.err)
  stamp "ncu $v rc $?"
done
python3 - <<'PY' | tee -a $OUT/call.log
import csv, collections
for v in ("old", "new"):
    d = collections.defaultdict(list)
    try:
        rows = [r for r in csv.reader(open(f"/tmp/logs/ncu-{v}.csv")) if len(r) > 10]
        h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value")
        for r in rows[1:]: d[r[ki].split("(")[0]].append(float(r[vi].replace(",", "")) / 1000)
        print(v, " | ".join(f"{k} {sorted(x)}" for k, x in sorted(d.items())))
    except Exception as e: print(v, "ncu parse failed", e)
PY
bench() { local n=$1 cp=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left 80) java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 "$@" > /tmp/logs/bench-$n.log 2>&1)
  stamp "bench $n rc $?"; }
bench old1 $OLD; bench new1 $NEW; bench old2 $OLD; bench new2 $NEW --profile
(cd /tmp/w && timeout -s KILL $(left 230) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/suite.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/suite.log | tr -s ' ' | tr '\n' ' ')"
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/suite.log | cut -c1-220 | head -20
for f in /tmp/logs/bench-*.log; do echo "== $f"; grep -E "^deepseek|stages|router:" $f | cut -c1-300; done
