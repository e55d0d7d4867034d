#!/usr/bin/env bash
# Session-8 lead, call l: full GPU suite on the final tree (LayerKernels' bf16-Y check of both GEMM2 tiles), then
# one moe bench. Was call k: existing settings as variants in the same JVM on the final tree (fdbb982), DeepSeek-V3 FP8
# 4096 / 16384 tokens, twice; no GPU tests (call j ran them on this tree). Was call j: the engine's fatbin without the benchmark-only GEMM variants (MOE_BENCH_VARIANTS=0) and
# compressed with --compress-mode=size (0.93 MB): SASS counts, full GPU suite, moe bench FP8 + BF16 vs prev.
# Earlier: call i (unit order on Mixtral/Qwen3), call g (the wave bound added; final figures):
# was call f: FP8 GEMM2 takes the 128-row tile (_m128u, bf16 Y in the layer) where at most half of the
# worst case's row blocks may be partial (GroupedGemmConfig.mostlyFullBlocks). Full GPU suite on the new tree, then
# `moe bench` FP8, new vs prev (= db84e81's classes + fatbin first on the classpath), alternating.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-480}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/prev /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/prev.tar.xz -C /tmp/prev
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 120) bash scripts/gpu-test.sh > /tmp/logs/test.log 2>&1)
stamp "gpu tests rc $?"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
mb() { # label overlay cap bench-args...
  local n=$1 o=$2 cap=$3; shift 3
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
mb fin "" 60 --shapes deepseek-v3,qwen3-30b-a3b --precision fp8 --tokens 4096,16384 --runs 30
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
grep -aE "fp8 recipe" /tmp/logs/test.log | cut -c1-220
grep -E "^(###|qwen3|mixtral|deepseek)|variant" /tmp/logs/moe.log | cut -c1-150
