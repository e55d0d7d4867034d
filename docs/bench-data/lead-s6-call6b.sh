#!/usr/bin/env bash
# Session-6 lead call 2: where the GEMMs' DRAM bytes go (ncu metrics of the routed GEMMs inside the layer) and
# whether the padding skip costs L2 locality (BF16 GEMM1 skip on/off both orders; FP8 GEMM1 with every row computed).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
rm -rf /tmp/w && mkdir -p /tmp/w && tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
CP="/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*"
mb() { # label overlay java-opts bench-args...
  local l=$1 o=$2 j=$3; shift 3
  echo "### $l" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g $j -cp "${o:+$o:}$CP" dev.sparkmoe.cli.MoeCli bench --profile "$@" >> $OUT/moe.log 2>&1)
  stamp "moe $l rc $?"
}
V=sparkmoe.gpu.bf16Gemm1SkipPaddingHalves
mb "bf16 skip(ours) / noskip(variant)" "" "" --shapes deepseek-v3,mixtral-8x7b --precision native --tokens 4096,16384 --variant "$V=false"
mb "bf16 noskip(ours) / skip(variant)" "" "-D$V=false" --shapes deepseek-v3,mixtral-8x7b --precision native --tokens 4096,16384 --variant "$V=true"
mb "fp8 base" "" "" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384
mb "fp8 gemm1 all rows" $P/alt-fp8all "" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384
mb "fp8 base" "" "" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384
mb "fp8 gemm1 all rows" $P/alt-fp8all "" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384
M=dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,launch__grid_size
nc() { # label precision tokens kernel-regex count
  stamp "ncu $1"
  (cd /tmp/w && timeout -s KILL $(left 60) ncu --target-processes all -k "regex:$4" --launch-count $5 --metrics $M --csv \
    java -Xmx48g -cp "$CP" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision $2 --tokens $3 --runs 1 --warmup 0 --rotations 1 \
    > $OUT/ncu-$1.csv 2>&1)
  stamp "ncu $1 rc $?"
}
nc fp8-4096 fp8 4096 'grouped_gemm(1_swiglu|2)_fp8' 4
nc fp8-16384 fp8 16384 'grouped_gemm(1_swiglu|2)_fp8' 4
nc bf16-4096 native 4096 'grouped_gemm(1_swiglu|2)_bf16' 4
(cd $OUT && tar -cJf ncu.tar.xz ncu-*.csv && rm -f ncu-*.csv)
for f in fp8-4096 fp8-16384 bf16-4096; do :; done
tar -xJf $OUT/ncu.tar.xz -O 2>/dev/null | grep -E '^"[0-9]' | awk -F'","' '{print $5" | "$(NF-2)" | "$(NF-1)" | "$NF}' | sed 's/"//g' | cut -c1-160
grep -E "^(###|deepseek|mixtral)|stages|variant \[" $OUT/moe.log | cut -c1-230
