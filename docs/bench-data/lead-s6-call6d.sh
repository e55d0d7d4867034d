#!/usr/bin/env bash
# Session-6 lead final call: merged tree (split6 + gather6 + dynamic units v7.1). SASS, gemm_bench check of the new
# kernels, GPU tests (defaults; then gatherRows=true), moe bench with the torch peer (DeepSeek-V3 both orders vs
# gather / static variants; Mixtral + Qwen3 4096; all shapes at 16 tokens), ncu DRAM bytes of GEMM1, gemm_bench layer.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-520}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
rm -rf /tmp/w && mkdir -p /tmp/w && tar -xJf $P/classes.tar.xz -C /tmp/w
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 60 cuobjdump --dump-sass $F > /tmp/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/sass.txt | sort >> $OUT/env.txt
echo "SASS: $(grep -c ' HGMMA' $OUT/env.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' $OUT/env.txt) kernel/QGMMA pairs"
cd /tmp/w/scripts/bench
stamp check
timeout -s KILL $(left 60) python3 gemm_bench.py check --module $F --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2gd,grouped_gemm1_swiglu_fp8_m128usu2g,grouped_gemm1_swiglu_bf16_d,grouped_gemm2_fp8_ud > $OUT/check.log 2>&1
stamp "check rc $? ok=$(grep -c '"ok": true' $OUT/check.log) bad=$(grep -c '"ok": false' $OUT/check.log)"
grep -E '"ok": false' $OUT/check.log | cut -c1-300
export PATH=/tmp/rt/jre/bin:$PATH
CP="/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*"
stamp "gpu tests (defaults)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep1 timeout -s KILL $(left 110) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
stamp "gpu tests rc $?"
stamp "gpu tests (gatherRows=true)"
(cd /tmp/w && JAVA_TOOL_OPTIONS="-Dsparkmoe.gpu.gatherRows=true" MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep2 timeout -s KILL $(left 110) bash scripts/gpu-test.sh > $OUT/test-gather.log 2>&1)
stamp "gpu tests gather rc $?"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > $OUT/clocks.csv 2>&1 &
SMI=$!
PEER="python3 /tmp/w/scripts/bench/torch_moe_layer.py"
G=sparkmoe.gpu.gatherRows; D=sparkmoe.gpu.gemmDynamicUnits
mb() { # name cap java-opts bench-args...
  local n=$1 cap=$2 j=$3; shift 3
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g $j -cp "$CP" dev.sparkmoe.cli.MoeCli bench --json $OUT/bench-$n.json "$@" > $OUT/bench-$n.log 2>&1)
  stamp "moe $n rc $?"
}
mb ds 90 "" --shapes deepseek-v3 --precision fp8,native --tokens 4096,16384 --profile --peer "$PEER" --variant "$G=true" --variant "$D=off"
mb ds-rev 60 "-D$G=true" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile --variant "$G=false" --variant "$G=false;$D=off"
mb bf16 70 "" --shapes mixtral-8x7b,qwen3-30b-a3b --precision native,fp8 --tokens 4096 --peer "$PEER" --variant "$D=off"
mb t16 60 "" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --peer "$PEER"
kill $SMI 2>/dev/null
M=dram__bytes_read.sum,lts__t_bytes.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum
nc() { # label precision tokens regex count java-opts
  (cd /tmp/w && timeout -s KILL $(left 50) ncu --target-processes all -k "regex:$4" --launch-count $5 --metrics $M --csv \
    java -Xmx48g $6 -cp "$CP" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision $2 --tokens $3 --runs 1 --warmup 0 --rotations 1 \
    > $OUT/ncu-$1.csv 2>&1)
  stamp "ncu $1 rc $?"
}
nc fp8-4096 fp8 4096 'grouped_gemm1_swiglu_fp8' 2 ""
nc fp8-16384 fp8 16384 'grouped_gemm1_swiglu_fp8' 2 ""
nc fp8g-16384 fp8 16384 'grouped_gemm1_swiglu_fp8' 2 "-D$G=true"
nc bf16-16384 native 16384 'grouped_gemm1_swiglu_bf16' 2 ""
(cd $OUT && tar -cJf ncu.tar.xz ncu-*.csv && rm -f ncu-*.csv)
timeout -s KILL $(left 60) python3 gemm_bench.py layer --module $F --out /tmp/logs --fp8-only \
  --skip pf,pfs,m128,m128p,m128s,m128n128,m128u,m128us,m128usp,m128usu4,m128uu2,m128usu2h,lookahead,noskip,u,skip,m128usu2g1,ud,d,g > $OUT/layer.log 2>&1
stamp "layer rc $?"
xz -9 $OUT/clocks.csv
echo "SM clock MHz during the benches (min / median / max): $(xzcat $OUT/clocks.csv.xz | awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')"
(cd $OUT && tar -cJf benches.tar.xz bench-*.json && rm -f bench-*.json)
grep -aE "✘|tests (successful|failed)" $OUT/test.log $OUT/test-gather.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
tar -xJf $OUT/ncu.tar.xz -O 2>/dev/null | grep -E '^"[0-9]' | awk -F'","' '{print $5" | "$(NF-2)" | "$NF}' | sed 's/"//g' | grep -E "dram|duration" | cut -c1-110
grep -E '"shape"' $OUT/layer.log | python3 -c "
import sys,json
for l in sys.stdin:
  d=json.loads(l); print(d['shape'][:60]); [print('   ',k,v.get('ms'),v.get('tflops'),v.get('error','')[:100]) for k,v in d.items() if k!='shape']" 2>/dev/null | head -20
for f in ds ds-rev bf16 t16; do echo "== $f"; grep -E "^(deepseek|mixtral|qwen)|variant \[" $OUT/bench-$f.log | cut -c1-150; done
