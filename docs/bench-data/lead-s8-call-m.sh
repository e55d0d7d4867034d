#!/usr/bin/env bash
# Session-8 lead, call m (measure only): where the small-batch route kernel's ~24 us go at 16 Qwen3 tokens (FP8).
# ncu on one launch of moe_decode_route_t16 (full set, source counters), SASS-level stall samples as CSV, and the
# three decode kernels' durations. (Runtime and classes from .gpuwork-s8f, as in calls f-l.)
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-s8f
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
B="java -Xmx48g -cp /tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/* dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision fp8 --tokens 16 --runs 6 --warmup 2"
(cd /tmp/w && timeout -s KILL 100 ncu --cache-control none --clock-control none -k regex:moe_decode_route --launch-skip 6 --launch-count 1 \
   --set full --import-source yes -o /tmp/logs/route $B > /tmp/logs/ncu-route.log 2>&1)
(cd /tmp/w && timeout -s KILL 40 ncu --import /tmp/logs/route.ncu-rep --page source --csv --print-source sass > /tmp/logs/route-sass.csv 2>&1)
(cd /tmp/w && timeout -s KILL 40 ncu --import /tmp/logs/route.ncu-rep --page details --csv > /tmp/logs/route-details.csv 2>&1)
(cd /tmp/w && timeout -s KILL 60 ncu --cache-control none --clock-control none -k regex:moe_decode --launch-skip 9 --launch-count 15 \
   --metrics gpu__time_duration.sum --csv $B > /tmp/logs/ncu-durations.csv 2>&1)
xz -9 -c /tmp/logs/route-sass.csv > $OUT/route-sass.csv.xz; cp /tmp/logs/route-details.csv /tmp/logs/ncu-durations.csv $OUT/
