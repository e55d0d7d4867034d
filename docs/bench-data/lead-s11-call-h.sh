#!/usr/bin/env bash
# Session-11 lead, call H: timing-only probe - GEMM1 (FP8) without its per-unit arrival and re-quantization (noreq;
# output wrong by design) against main fa83577 (new): ncu kernel durations and 16-token FP8 timing.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-200}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/variants.tar.xz -C /tmp/var
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
NEW=/tmp/w/gpu-kernels/target/classes
cpof() { case $1 in new) echo $NEW;; *) echo /tmp/var/$1:$NEW;; esac; }
for r in 1 2 3; do for v in new noreq; do
  echo "### r$r-$v" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 30) java -Xmx48g -cp "$(cpof $v):/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes mixtral-8x7b,deepseek-v3,qwen3-30b-a3b --precision fp8 --tokens 16 --runs 100 >> /tmp/logs/moe.log 2>&1)
  stamp "moe r$r-$v rc $?"
done; done
M=gpu__time_duration.sum,dram__bytes_read.sum
for v in new noreq; do
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
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
python3 - /tmp/logs/moe.log <<'PY'
import sys, collections
cur=None; d=collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('### '): cur=line.split()[1].split('-',1)[1]; continue
    f=line.split()
    if f and f[0] in ('qwen3-30b-a3b','mixtral-8x7b','deepseek-v3') and f[2]=='16': d[(f[0],f[1],cur)].append((float(f[3]), float(f[11])))
for k in sorted(d):
    v=d[k]; print(f"{k[0]:14} {k[1]:6} {k[2]:6} {' '.join(f'{a:.3f}' for a,b in v):22} {' '.join(f'{b:.3f}' for a,b in v):22}")
PY
