#!/usr/bin/env bash
# Session-11 lead, call K: branch s11-bf16bulk (new: the BF16 small-batch GEMMs' weight ring filled by one evict-first bulk
# copy per slab; FP8 keeps cp.async) against main fa83577 (old): DecodePathGpuTest + GpuMoeEngineGpuTest, 16-token timing.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/wo /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w /tmp/wo
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/classes-old.tar.xz -C /tmp/wo; 
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
cpof() { case $1 in new) echo $NEW;; old) echo $OLD;; *) echo /tmp/var/$1:$NEW;; esac; }
for cls in DecodePathGpuTest GpuMoeEngineGpuTest; do
(cd /tmp/w && timeout -s KILL $(left 120) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --select-class=dev.sparkmoe.gpu.$cls > /tmp/logs/test-$cls.log 2>&1)
stamp "$cls rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test-$cls.log | tr -s ' ' | tr '\n' ' ')"
done
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
  for v in old new; do
    mb "r$r-$v" --shapes mixtral-8x7b,deepseek-v3,qwen3-30b-a3b --precision fp8,native --tokens 16 --runs 100
  done
done
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
M=gpu__time_duration.sum,dram__bytes_read.sum
for v in old new; do
  (cd /tmp/w && timeout -s KILL $(left 40) ncu --graph-profiling node -k regex:moe_decode --launch-skip 9 --launch-count 9 --cache-control none --clock-control none \
     --metrics $M --csv --print-units base java -Xmx48g -cp "$(cpof $v):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision fp8 --tokens 16 --runs 5 --warmup-ms 0 > /tmp/logs/ncu-$v.csv 2>/tmp/logs/ncu-$v.err)
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
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test-*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test-*.log | cut -c1-220
python3 - /tmp/logs/moe.log <<'PY'
import sys, collections
cur=None; d=collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('### '): cur=line.split()[1].split('-',1)[1]; continue
    f=line.split()
    if f and f[0] in ('qwen3-30b-a3b','mixtral-8x7b','deepseek-v3') and f[2]=='16': d[(f[0],f[1],cur)].append((float(f[3]), float(f[11]), float(f[8])))
print(f"{'shape':14} {'prec':6} {'variant':6} {'ms(med) per round':22} {'dev_ms per round':22} enq_us")
for k in sorted(d):
    v=d[k]; print(f"{k[0]:14} {k[1]:6} {k[2]:6} {' '.join(f'{a:.3f}' for a,b,c in v):22} {' '.join(f'{b:.3f}' for a,b,c in v):22} {' '.join(f'{c:.1f}' for a,b,c in v)}")
PY
