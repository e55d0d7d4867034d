#!/usr/bin/env bash
# Helper glue5, device call 1 (session 4): GPU tests (incl. bf16 expert outputs vs the CPU engine, scatter kernels
# bitwise), SASS of the new kernels and the router, moe bench DeepSeek-V3 fp8+native 4096/16384 --profile with the torch
# peer and two variants (V1 = expertOutputPrecision=bf16, V2 = scatterKernel=blockwise), SM clock log, then one ncu
# line set for the router logits kernel tc2 at 16384 tokens. Every stage capped; whole command ends by DEADLINE.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-290}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
mkdir -p /tmp/rt /tmp/w
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
echo "unpacked at ${SECONDS}s"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 30 cuobjdump --dump-sass $F > /tmp/sass.txt 2>&1
timeout 20 cuobjdump --dump-resource-usage $F 2>&1 | grep -E "router_logits_tc2|dispatch_rows|moe_combine|gemm2_(fp8|bf16)(_ybf16)? " -A1 | grep -E "Function|REG" >> $OUT/env.txt
awk '/Function :/{f=$3} f ~ /router_logits_tc2|dispatch_rows_fp8|combine_bf16|gemm2_fp8_ybf16/ && /DMMA|LDS|BAR|STS|LDGSTS|LDG|STG|SHFL/{match($0,/(DMMA|LDS|BAR|STS|LDGSTS|LDG|STG|SHFL)[.0-9A-Za-z]*/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/sass.txt | sort >> $OUT/env.txt
awk '/Function :.*router_logits_tc2/{f=1;n=0} f{print; if(++n>2500) f=0} /Function :/ && !/router_logits_tc2/{f=0}' /tmp/sass.txt > $OUT/sass-tc2.txt
export PATH=/tmp/rt/jre/bin:$PATH
echo "== gpu tests $(date +%T) (${SECONDS}s)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 130) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
grep -aE "✘|tests (successful|failed)|Test run finished" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220
echo "== moe bench $(date +%T) (${SECONDS}s)"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 20 > /tmp/clocks.csv 2>&1 &
SMI=$!
(cd /tmp/w && timeout -s KILL $(left 120) java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py" --json $OUT/bench.json --shapes deepseek-v3 \
  --precision fp8,native --tokens 4096,16384 --runs 20 --profile \
  --variant 'sparkmoe.gpu.expertOutputPrecision=bf16' \
  --variant 'sparkmoe.gpu.scatterKernel=blockwise' \
  > $OUT/bench.log 2>&1)
kill $SMI 2>/dev/null
echo "SM clock MHz during the bench (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/env.txt
echo "== ncu router tc2 $(date +%T) (${SECONDS}s)"
L=$(left 45)
if [ $L -ge 30 ]; then
(cd /tmp/w && timeout -s KILL $L ncu --clock-control none --kernel-name regex:router_logits_tc2 --launch-skip 2 --launch-count 1 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section InstructionStats --section WarpStateStats --section SchedulerStats \
  java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 16384 --runs 2 \
  > $OUT/ncu-tc2.txt 2>&1)
fi
grep -aE "Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache|Compute \(SM\)|Achieved Occupancy|Registers Per|Stall|Issue Slot|Eligible|Executed Ipc|SM Frequency|Block Limit" $OUT/ncu-tc2.txt | head -30
cp /tmp/clocks.csv $OUT/ 2>/dev/null; xz -9 $OUT/clocks.csv 2>/dev/null
echo "== end $(date +%T) (${SECONDS}s)"
grep -vE "^\s*$|\[peer\]" $OUT/bench.log | cut -c1-250 | grep -vE "stages"
echo "== table: layer ms (ours = fp32 Y + prefetch scatter; V1 = bf16 Y; V2 = blockwise scatter); stages ours/V1/V2"
python3 - "$OUT/bench.log" <<'PY'
import re,sys
rows={};cur=None;var=None
for line in open(sys.argv[1],errors='replace'):
    m=re.match(r'^(deepseek-v3)\s+(\S+)\s+(\d+)\s+([\d.]+)\s.*?\s([\d.]+)\s+([\d.]+)x\s*$',line)
    if m: cur=(m.group(2),m.group(3)); rows[cur]={'ours':float(m.group(4)),'peer':float(m.group(5))}; var=None; continue
    if re.match(r'^\S',line): cur=None; continue
    m=re.search(r'variant \[([^\]]*)\] deepseek-v3 (\S+) (\d+) tokens: ([\d.]+) ms',line)
    if m: var='V1' if 'expertOutput' in m.group(1) else 'V2'; cur=(m.group(2),m.group(3)); rows[cur][var]=float(m.group(4)); continue
    m=re.search(r'stages \(ms\):(.*)',line)
    if m and cur in rows:
        st=dict((k.strip(),float(v)) for k,v in re.findall(r'([^|:]+?) ([\d.]+)(?: \||$)',m.group(1).strip()))
        rows[cur]['st_'+(var or 'ours')]=st
nan=float('nan')
for (p,t),r in rows.items():
    def g(v,s):
        d=r.get('st_'+v,{}); return next((x for k,x in d.items() if k.startswith(s)),nan)
    print(f"{p:6} {t:>5}: ours {r['ours']:.3f} V1 {r.get('V1',nan):.3f} V2 {r.get('V2',nan):.3f} peer {r['peer']:.3f} ({r['peer']/r['ours']:.2f}x, V1 {r['peer']/r.get('V1',nan):.2f}x) | scatter {g('ours','pad + scatter'):.3f}/{g('V1','pad + scatter'):.3f}/{g('V2','pad + scatter'):.3f} GEMM2 {g('ours','GEMM2'):.3f}/{g('V1','GEMM2'):.3f}/{g('V2','GEMM2'):.3f} combine {g('ours','combine'):.3f}/{g('V1','combine'):.3f}/{g('V2','combine'):.3f} shared {g('ours','shared'):.3f}/{g('V1','shared'):.3f} router {g('ours','router'):.3f}")
PY
grep -a "\[y bf16\]" $OUT/test.log | cut -c1-200
