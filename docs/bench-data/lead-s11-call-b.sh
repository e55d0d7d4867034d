#!/usr/bin/env bash
# Session-11 lead, call B: small-batch (16-token) experiments on 2acde40:
#  tma0/tma1: branch s11-tma (c424654 onto 2acde40) built with DEC_TMA=0 (its default classes) and DEC_TMA=1 (overlay);
#  noepi/stores: timing-only GEMM2 probes (no epilogue / stores without arrival+combine; outputs wrong by design);
#  rprobe: route kernel with %globaltimer/clock64 stamps printed by the routing CTA (ROUTEPROBE lines).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/wt /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w /tmp/wt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/classes-tma.tar.xz -C /tmp/wt; tar -xJf $P/variants.tar.xz -C /tmp/var
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
MAIN=/tmp/w/gpu-kernels/target/classes; TMA=/tmp/wt/gpu-kernels/target/classes
cpof() { case $1 in main) echo $MAIN;; tma0) echo $TMA;; tma1) echo /tmp/var/tma1:$TMA;; noepi|stores|rprobe) echo /tmp/var/$1:$MAIN;; esac; }
(cd /tmp/wt && timeout -s KILL $(left 90) java -Xmx24g -cp "/tmp/var/tma1:gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/logs/test-decode-tma1.log 2>&1)
stamp "DecodePathGpuTest (tma1) rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/test-decode-tma1.log | tr -s ' ' | tr '\n' ' ')"
grep -a "small batch\]" /tmp/logs/test-decode-tma1.log | head -60 > $OUT/decode-test-tma1-lines.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
mb() { # label bench-args...
  local n=$1 v=${1#*-}; shift
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "$(cpof $v):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
for r in 1 2 3; do
  for v in main tma0 tma1; do
    mb "r$r-$v" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --runs 100
  done
  for v in noepi stores; do
    mb "r$r-$v" --shapes qwen3-30b-a3b,mixtral-8x7b --precision fp8,native --tokens 16 --runs 100
  done
done
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
(cd /tmp/w && timeout -s KILL $(left 40) java -Xmx48g -cp "$(cpof rprobe):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
   --shapes qwen3-30b-a3b,deepseek-v3,mixtral-8x7b --precision fp8,native --tokens 16 --runs 100 > /tmp/logs/rprobe.log 2>&1)
stamp "rprobe rc $?"
M=gpu__time_duration.sum,dram__bytes_read.sum
for v in main tma1 noepi stores; do
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
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -a ROUTEPROBE /tmp/logs/rprobe.log | awk '{k=$2" "$3; c[k]++; if (c[k] <= 3) print}' | cut -c1-250
grep -aE "^(qwen3|mixtral|deepseek)" /tmp/logs/rprobe.log | cut -c1-160
awk '/^### /{n=$2} /^(qwen3|mixtral|deepseek)/{printf "%-10s %-14s %-6s %s %s %s %s %s\n", n, $1, $2, $4, $7, $12, $13, $14}' /tmp/logs/moe.log | sort -k2,3 -s
