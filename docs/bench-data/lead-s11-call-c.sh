#!/usr/bin/env bash
# Session-11 lead, call C: small-batch GEMM arrivals batched per warp after its last unit (new) against 2acde40 (old):
# DecodePathGpuTest, 16-token timing (3 rounds, 3 shapes, fp8 + native), ncu kernel durations; the route kernel's
# routing CTA run twice (rprobe2: pass 2 with warm instruction caches) and its warp-state stall reasons (ncu).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/wo /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w /tmp/wo
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/classes-old.tar.xz -C /tmp/wo; tar -xJf $P/variants.tar.xz -C /tmp/var
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
cpof() { case $1 in new) echo $NEW;; old) echo $OLD;; rprobe2) echo /tmp/var/rprobe2:$NEW;; esac; }
(cd /tmp/w && timeout -s KILL $(left 90) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/logs/test-decode.log 2>&1)
stamp "DecodePathGpuTest (new) rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/test-decode.log | tr -s ' ' | tr '\n' ' ')"
grep -a "small batch\]" /tmp/logs/test-decode.log | head -60 > $OUT/decode-test-lines.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
mb() { # label bench-args...
  local n=$1 v=${1#*-}; shift
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "$(cpof $v):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
for r in 1 2 3 4; do
  for v in old new; do
    mb "r$r-$v" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --runs 100
  done
done
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
(cd /tmp/w && timeout -s KILL $(left 40) java -Xmx48g -cp "$(cpof rprobe2):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
   --shapes qwen3-30b-a3b,deepseek-v3 --precision fp8 --tokens 16 --runs 100 > /tmp/logs/rprobe2.log 2>&1)
stamp "rprobe2 rc $?"
M=gpu__time_duration.sum,dram__bytes_read.sum
for v in old new; do
  (cd /tmp/w && timeout -s KILL $(left 40) ncu --graph-profiling node -k regex:moe_decode --launch-skip 9 --launch-count 9 --cache-control none --clock-control none \
     --metrics $M --csv --print-units base java -Xmx48g -cp "$(cpof $v):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision fp8 --tokens 16 --runs 5 > /tmp/logs/ncu-$v.csv 2>/tmp/logs/ncu-$v.err)
  python3 - /tmp/logs/ncu-$v.csv $v <<'PY'
import csv, sys, collections
rows=[r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr=rows[0]; ki=hdr.index('Kernel Name'); mi=hdr.index('Metric Name'); vi=hdr.index('Metric Value'); ii=hdr.index('ID')
d=collections.defaultdict(dict)
for r in rows[1:]: d[(r[ii], r[ki])][r[mi]] = r[vi]
for (i,k),m in d.items():
    t=float(m.get('gpu__time_duration.sum','0').replace(',','')); b=float(m.get('dram__bytes_read.sum','0').replace(',',''))
    print(f"{sys.argv[2]:6} {k[:28]:28} {t/1000:7.1f} us {b/t if t else 0:6.0f} GB/s")
PY
done 2>&1 | tee -a $OUT/call.log
# route kernel: warp states and source-level samples (Qwen3 FP8 16 tokens)
(cd /tmp/w && timeout -s KILL $(left 60) ncu --graph-profiling node -k regex:moe_decode_route --launch-skip 6 --launch-count 1 --cache-control none --clock-control none \
   --section WarpStateStats --section SourceCounters --section SchedulerStats --import-source yes -o /tmp/logs/route -f \
   java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision fp8 --tokens 16 --runs 5 > /tmp/logs/ncu-route.out 2>&1)
stamp "ncu route rc $?"
timeout 60 ncu -i /tmp/logs/route.ncu-rep --page details --csv > /tmp/logs/route-details.csv 2>&1
timeout 60 ncu -i /tmp/logs/route.ncu-rep --page source --csv --print-source sass > /tmp/logs/route-source-sass.csv 2>&1
timeout 60 ncu -i /tmp/logs/route.ncu-rep --page source --csv --print-source cuda > /tmp/logs/route-source-cuda.csv 2>&1
ls -la /tmp/logs/route* | tee -a $OUT/call.log
grep -i "stall\|no instruction\|Warp Cycles" /tmp/logs/route-details.csv | cut -c1-200 | head -30
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -a ROUTEPROBE /tmp/logs/rprobe2.log | awk '{k=$2" "$3; c[k]++; if (c[k] <= 3) print}' | cut -c1-260
awk '/^### /{n=$2} /^(qwen3|mixtral|deepseek)/{printf "%-10s %-14s %-6s %s %s %s %s %s\n", n, $1, $2, $4, $7, $12, $13, $14}' /tmp/logs/moe.log | sort -k2,3 -s
