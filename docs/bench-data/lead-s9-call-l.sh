#!/usr/bin/env bash
# Session-9 lead, call l (measure only): the phases of the 16-warp route kernel (c8ca939), as call j did for the 8-warp one. Timing-only builds that leave
# the kernel early (MOE_DEC_ROUTE_EXIT: x1 after the logit partials, x2 after the row groups' sums, x3 after top-k,
# before the plan; the layers they run compute garbage) against the head; ncu durations of moe_decode_route_t16,
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
  for v in head x1 x2 x3 head; do
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
