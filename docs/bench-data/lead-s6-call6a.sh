#!/usr/bin/env bash
# Session-6 lead call 1: BF16 _u tiles (v5.2) - gemm_bench check, moe bench DeepSeek-V3 BF16 production vs overlay
# (_u as production) alternating, GPU tests on c5370bd (review mends), ncu of the BF16 GEMM1 inside the 16384 layer,
# gemm_bench layer (BF16 u vs base).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
cd /tmp/w/scripts/bench; F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
stamp check
timeout -s KILL $(left 40) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_bf16_u,grouped_gemm2_bf16_u,grouped_gemm2_bf16_u_ybf16,grouped_gemm1_swiglu_bf16,grouped_gemm2_bf16 > $OUT/check.log 2>&1
stamp "check rc $? ok=$(grep -c '"ok": true' $OUT/check.log) bad=$(grep -c '"ok": false' $OUT/check.log)"
grep -E '"ok": false' $OUT/check.log | cut -c1-300
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > $OUT/clocks.csv 2>&1 &
SMI=$!
mb() { # label overlay extra...
  local l=$1 o=$2; shift 2
  echo "### $l" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left 110) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision native --tokens 4096,16384 --profile "$@" >> $OUT/moe.log 2>&1)
  stamp "moe $l rc $?"
}
mb base ""; mb u $P/alt-u --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py"; mb u $P/alt-u; mb base ""
kill $SMI 2>/dev/null
stamp "gpu tests"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 130) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
stamp "gpu tests rc $?"
stamp ncu
(cd /tmp/w && timeout -s KILL $(left 100) ncu --target-processes all -k regex:grouped_gemm1_swiglu_bf16 --launch-count 3 \
   --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section LaunchStats \
   --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_bytes.sum.per_second,dram__bytes_read.sum.per_second,sm__cycles_elapsed.avg.per_second \
   -o $OUT/bf16g1 java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
   --shapes deepseek-v3 --precision native --tokens 16384 --runs 2 --warmup 1 --rotations 1 > $OUT/ncu-run.log 2>&1)
stamp "ncu rc $?"
timeout 60 ncu --import $OUT/bf16g1.ncu-rep --page details > $OUT/ncu-details.txt 2>&1
timeout -s KILL $(left 60) python3 gemm_bench.py layer --module $F --out /tmp/logs \
  --skip pf,pfs,m128,m128p,m128s,m128n128,m128u,m128us,m128usp,m128usu4,m128uu2,m128usu2h,lookahead > $OUT/layer.log 2>&1
stamp "layer rc $?"
xz -9 $OUT/clocks.csv
echo "SM clock MHz (min/median/max): $(xzcat $OUT/clocks.csv.xz | awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')"
grep -aE "✘|tests (successful|failed)" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|DRAM Throughput|hmma|lts__t_bytes|dram__bytes|Grid Size|Registers|cycles_elapsed|Issue Slots Busy|No Eligible" $OUT/ncu-details.txt | head -45
grep -E '"shape"' $OUT/layer.log | python3 -c "
import sys,json
for l in sys.stdin:
  d=json.loads(l); print(d['shape'][:70]); [print('   ',k,v) for k,v in d.items() if k!='shape' and 'bf16' in k]" 2>/dev/null | head -40
grep -E "^(###|deepseek)|stages" $OUT/moe.log | cut -c1-230
