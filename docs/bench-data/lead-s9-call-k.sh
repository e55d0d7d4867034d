#!/usr/bin/env bash
# Session-9 lead, call k: the small-batch route kernel with 16 warps per CTA (one router row each; in the last CTA one
# token's top-k each) and the plan's entries placed by all threads (rank among the same expert's entries) instead of
# one warp's match_any loop. Full GPU suite on it, then new vs prev (the head's classes + fatbin first on the classpath)
# alternating, and ncu durations of the route kernel.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/variants.tar.xz -C /tmp/var
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 150) bash scripts/gpu-test.sh > /tmp/logs/test.log 2>&1)
stamp "gpu tests rc $?"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
mb() { # label overlay bench-args...
  local n=$1 o=$2; shift 2
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
for r in 1 2 3 4; do
  mb "r$r-new" "" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --runs 100
  mb "r$r-prev" /tmp/var/prev --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --runs 100
done
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
for shape in qwen3-30b-a3b deepseek-v3; do
  for v in new prev; do
    o=""; [ $v = prev ] && o=/tmp/var/prev:
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
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
grep -aE "fp8 recipe" /tmp/logs/test.log | cut -c1-220
awk '/^### /{n=$2} /^(qwen3|mixtral|deepseek)/{printf "%-10s %-14s %-6s %s %s\n", n, $1, $2, $4, $7}' /tmp/logs/moe.log | sort -k2,3 -s
