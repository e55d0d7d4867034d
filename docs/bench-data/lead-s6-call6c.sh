#!/usr/bin/env bash
# Session-6 lead call 3: GEMM units claimed at run time (Tile::kDynamic) - gemm_bench check, GPU tests with the
# setting on for every engine, moe bench static vs dynamic in both orders, ncu DRAM bytes, gemm_bench layer.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-420}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
rm -rf /tmp/w && mkdir -p /tmp/w && tar -xJf $P/classes.tar.xz -C /tmp/w
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
cd /tmp/w/scripts/bench
stamp check
timeout -s KILL $(left 60) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm2_fp8_ud,grouped_gemm1_swiglu_bf16_d,grouped_gemm2_bf16_d > $OUT/check.log 2>&1
stamp "check rc $? ok=$(grep -c '"ok": true' $OUT/check.log) bad=$(grep -c '"ok": false' $OUT/check.log)"
grep -E '"ok": false' $OUT/check.log | cut -c1-300
export PATH=/tmp/rt/jre/bin:$PATH
CP="/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*"
D=sparkmoe.gpu.gemmDynamicUnits
mb() { # label java-opts bench-args...
  local l=$1 j=$2; shift 2
  echo "### $l" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left 70) java -Xmx48g $j -cp "$CP" dev.sparkmoe.cli.MoeCli bench --profile "$@" >> $OUT/moe.log 2>&1)
  stamp "moe $l rc $?"
}
mb "static(ours) / dynamic(variant)" "" --shapes deepseek-v3 --precision fp8,native --tokens 4096,16384 --variant "$D=true"
mb "dynamic(ours) / static(variant)" "-D$D=true" --shapes deepseek-v3 --precision fp8,native --tokens 4096,16384 --variant "$D=false"
mb "mixtral+qwen3 static(ours) / dynamic(variant)" "" --shapes mixtral-8x7b,qwen3-30b-a3b --precision native,fp8 --tokens 4096 --variant "$D=true"
mb "mixtral+qwen3 dynamic(ours) / static(variant)" "-D$D=true" --shapes mixtral-8x7b,qwen3-30b-a3b --precision native,fp8 --tokens 4096 --variant "$D=false"
stamp "gpu tests (dynamic units on for every engine)"
(cd /tmp/w && JAVA_TOOL_OPTIONS="-D$D=true" MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 110) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
stamp "gpu tests rc $?"
M=dram__bytes_read.sum,lts__t_bytes.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum
nc() { # label precision tokens regex count
  (cd /tmp/w && timeout -s KILL $(left 50) ncu --target-processes all -k "regex:$4" --launch-count $5 --metrics $M --csv \
    java -Xmx48g -D$D=true -cp "$CP" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision $2 --tokens $3 --runs 1 --warmup 0 --rotations 1 \
    > $OUT/ncu-$1.csv 2>&1)
  stamp "ncu $1 rc $?"
}
nc fp8-4096 fp8 4096 'grouped_gemm(1_swiglu|2)_fp8' 4
nc fp8-16384 fp8 16384 'grouped_gemm(1_swiglu|2)_fp8' 4
nc bf16-16384 native 16384 'grouped_gemm(1_swiglu|2)_bf16' 4
(cd $OUT && tar -cJf ncu.tar.xz ncu-*.csv && rm -f ncu-*.csv)
timeout -s KILL $(left 60) python3 gemm_bench.py layer --module $F --out /tmp/logs \
  --skip pf,pfs,m128,m128p,m128s,m128n128,m128u,m128us,m128usp,m128usu4,m128uu2,m128usu2h,lookahead,noskip,u > $OUT/layer.log 2>&1
stamp "layer rc $?"
grep -aE "✘|tests (successful|failed)" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
tar -xJf $OUT/ncu.tar.xz -O 2>/dev/null | grep -E '^"[0-9]' | awk -F'","' '{print $5" | "$(NF-2)" | "$NF}' | sed 's/"//g' | cut -c1-120
grep -E '"shape"' $OUT/layer.log | python3 -c "
import sys,json
for l in sys.stdin:
  d=json.loads(l); print(d['shape'][:60]); [print('   ',k,v.get('ms'),v.get('tflops'),v.get('error','')[:100]) for k,v in d.items() if k!='shape']" 2>/dev/null | head -40
grep -E "^(###|deepseek|mixtral|qwen)|stages \(|variant \[" $OUT/moe.log | cut -c1-200
