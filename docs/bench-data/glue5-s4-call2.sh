#!/usr/bin/env bash
# Helper glue5, device call 2 (session 4): GPU tests (bf16 expert outputs with whole-sector GEMM2 stores, router kernels
# tc2w/tc2o bitwise), moe bench DeepSeek-V3 fp8+native 4096/16384 --profile with the torch peer and variants
# V1 = expertOutputPrecision=bf16, V2 = routerKernel=tc2w, V3 = routerKernel=tc2o, V4 = bf16 + tc2o; then ncu:
# DRAM bytes of GEMM2 with fp32 vs bf16 Y and the router kernels tc2 vs tc2o. Every stage capped by DEADLINE.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-235}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
mkdir -p /tmp/rt /tmp/w
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes2.tar.xz -C /tmp/w; wait)
echo "unpacked at ${SECONDS}s"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 30 cuobjdump --dump-sass $F > /tmp/sass.txt 2>&1
timeout 20 cuobjdump --dump-resource-usage $F 2>&1 | grep -E "Function (moe_router_logits_tc2|grouped_gemm2_(fp8|bf16)(_ybf16)?:)" -A1 | grep -E "Function|REG" >> $OUT/env.txt
awk '/Function :/{f=$3} f ~ /router_logits_tc2|gemm2_(fp8|bf16)(_ybf16)?$/ && /DMMA|LDS|BAR|STS|STG|SHFL|F2F/{match($0,/(DMMA|LDS|BAR|STS|STG|SHFL|F2F)[.0-9A-Za-z]*/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/sass.txt | sort >> $OUT/env.txt
export PATH=/tmp/rt/jre/bin:$PATH
echo "== gpu tests $(date +%T) (${SECONDS}s)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 100) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
grep -aE "✘|tests (successful|failed)|Test run finished" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220
grep -aE "router kernels\]" $OUT/test.log | cut -c1-200
echo "== moe bench $(date +%T) (${SECONDS}s)"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 20 > /tmp/clocks.csv 2>&1 &
SMI=$!
(cd /tmp/w && timeout -s KILL $(left 100) java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py" --json $OUT/bench.json --shapes deepseek-v3 \
  --precision fp8,native --tokens 4096,16384 --runs 20 --profile \
  --variant 'sparkmoe.gpu.expertOutputPrecision=bf16' --variant 'sparkmoe.gpu.routerKernel=tc2w' \
  --variant 'sparkmoe.gpu.routerKernel=tc2o' --variant 'sparkmoe.gpu.expertOutputPrecision=bf16;sparkmoe.gpu.routerKernel=tc2o' \
  > $OUT/bench.log 2>&1)
kill $SMI 2>/dev/null
echo "SM clock MHz during the bench (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/env.txt
echo "== ncu $(date +%T) (${SECONDS}s)"
L=$(left 50)
if [ $L -ge 25 ]; then
(cd /tmp/w && timeout -s KILL $L ncu --clock-control none --kernel-name regex:"grouped_gemm2_fp8|moe_router_logits_tc2" --launch-skip 0 --launch-count 12 \
  --section SpeedOfLight --section Occupancy --section WarpStateStats --metrics dram__bytes_read.sum,dram__bytes_write.sum \
  java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 16384 --runs 1 --warmup 1 \
  --variant 'sparkmoe.gpu.expertOutputPrecision=bf16;sparkmoe.gpu.routerKernel=tc2o' > $OUT/ncu.txt 2>&1)
fi
grep -aE "^  [a-z_0-9]+ \(|Duration|DRAM Throughput|dram__bytes|Compute \(SM\) Throughput|Achieved Occupancy|Warp Cycles Per Issued" $OUT/ncu.txt | sed -E 's/\(([0-9]+, ){2}[0-9]+\)x\(.*//' | cut -c1-120 | head -80
cp /tmp/clocks.csv $OUT/ 2>/dev/null; xz -9 $OUT/clocks.csv 2>/dev/null
echo "== end $(date +%T) (${SECONDS}s)"
grep -vE "^\s*$|\[peer\]" $OUT/bench.log | cut -c1-250 | grep -vE "stages"
echo "== table: layer ms (ours = defaults; V1 = bf16 Y; V2 = tc2w; V3 = tc2o; V4 = bf16 Y + tc2o); stages ours/V1/V2/V3/V4"
python3 - "$OUT/bench.log" <<'PY'
import re,sys
names={'sparkmoe.gpu.expertOutputPrecision=bf16':'V1','sparkmoe.gpu.routerKernel=tc2w':'V2','sparkmoe.gpu.routerKernel=tc2o':'V3',
       'sparkmoe.gpu.expertOutputPrecision=bf16;sparkmoe.gpu.routerKernel=tc2o':'V4'}
rows={};cur=None;var=None
for line in open(sys.argv[1],errors='replace'):
    m=re.match(r'^(deepseek-v3)\s+(\S+)\s+(\d+)\s+([\d.]+)\s.*?\s([\d.]+)\s+([\d.]+)x\s*$',line)
    if m: cur=(m.group(2),m.group(3)); rows[cur]={'ours':float(m.group(4)),'peer':float(m.group(5))}; var=None; continue
    if re.match(r'^\S',line): cur=None; continue
    m=re.search(r'variant \[([^\]]*)\] deepseek-v3 (\S+) (\d+) tokens: ([\d.]+) ms',line)
    if m: var=names.get(m.group(1),'V?'); cur=(m.group(2),m.group(3)); rows[cur][var]=float(m.group(4)); continue
    m=re.search(r'stages \(ms\):(.*)',line)
    if m and cur in rows:
        st=dict((k.strip(),float(v)) for k,v in re.findall(r'([^|:]+?) ([\d.]+)(?: \||$)',m.group(1).strip()))
        rows[cur]['st_'+(var or 'ours')]=st
nan=float('nan'); V=['ours','V1','V2','V3','V4']
for (p,t),r in rows.items():
    def g(v,s):
        d=r.get('st_'+v,{}); return next((x for k,x in d.items() if k.startswith(s)),nan)
    print(f"{p:6} {t:>5}: " + " ".join(f"{v} {r.get(v,nan):.3f}" for v in V) + f" peer {r['peer']:.3f} | x peer: " + " ".join(f"{r['peer']/r.get(v,nan):.2f}" for v in V))
    for s in ['router','pad + scatter','GEMM2','combine','GEMM1','shared']:
        print(f"      {s:14}: " + " / ".join(f"{g(v,s):.3f}" for v in V))
PY
grep -a "\[y bf16\]" $OUT/test.log | cut -c1-200
