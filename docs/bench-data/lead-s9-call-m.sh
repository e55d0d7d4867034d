#!/usr/bin/env bash
# Session-9 lead, call m (measure only): inside the route kernel's top-k (c8ca939): timing-only builds ending after top-k (t3),
# after the k selection rounds (t2), after the keys and their images (t1), after loading the logits rows only (t9).
# The layers they run compute garbage; ncu durations of moe_decode_route_t16 against the head,
# clocks and caches free, 6 launches each, Qwen3 FP8 and DeepSeek-V3 FP8 at 16 tokens.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/variants.tar.xz -C /tmp/var
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
for shape in qwen3-30b-a3b deepseek-v3; do
  for v in head t9 t1 t2 t3 head; do
    o=""; [ $v != head ] && o=/tmp/var/$v:
    (cd /tmp/w && timeout -s KILL 40 ncu --graph-profiling node -k regex:moe_decode_route --launch-skip 4 --launch-count 6 --cache-control none --clock-control none \
       --metrics gpu__time_duration.sum --csv --print-units base java -Xmx48g -cp "$o/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes $shape --precision fp8 --tokens 16 --runs 5 > /tmp/logs/ncu-$shape-$v.csv 2>/tmp/logs/ncu-$shape-$v.err)
    python3 - /tmp/logs/ncu-$shape-$v.csv $shape $v <<'PY'
import csv, sys
rows=[r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr=rows[0]; vi=hdr.index('Metric Value')
t=sorted(float(r[vi].replace(',',''))/1000 for r in rows[1:])
print(f"{sys.argv[2]:14} {sys.argv[3]:5} route us: " + " ".join(f"{x:.1f}" for x in t))
PY
  done
done 2>&1 | tee -a $OUT/call.log
