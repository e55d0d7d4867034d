#!/usr/bin/env bash
# helper decode6, session 6, the one call: DecodePathGpuTest (+ GpuMoeEngineGpuTest if time), then moe bench at 16
# tokens of the three issue shapes, new build vs old (main's fatbin overlaid first on the classpath), both orders,
# then ncu kernel durations of the three small-batch kernels (Qwen3 FP8, 16 tokens) for both builds.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-190}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/o
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/old.tar.xz -C /tmp/o; wait)
stamp unpacked
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
export PATH=/tmp/rt/jre/bin:$PATH
OLD=/tmp/o/old
(cd /tmp/w && MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep1 timeout -s KILL $(left 50) bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > $OUT/test-decode.log 2>&1)
stamp "DecodePathGpuTest rc $?"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > $OUT/clocks.csv 2>&1 &
SMI=$!
mb() { # label overlay cap bench-args...
  local n=$1 o=$2 cap=$3; shift 3
  echo "### $n" >> $OUT/moe.log
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json $OUT/bench-$n.json "$@" >> $OUT/moe.log 2>&1)
  stamp "moe $n rc $?"
}
PEER="python3 /tmp/w/scripts/bench/torch_moe_layer.py"
ALL="--shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16"
Q="--shapes qwen3-30b-a3b --precision fp8,native --tokens 16"
mb new1 "" 40 $ALL --peer "$PEER"
mb old1 $OLD 40 $ALL --peer "$PEER"
mb old2 $OLD 15 $Q
mb new2 "" 15 $Q
kill $SMI 2>/dev/null
M=gpu__time_duration.sum,dram__bytes_read.sum
nc() { # label overlay
  (cd /tmp/w && timeout -s KILL $(left 15) ncu --clock-control none --target-processes all -k "regex:moe_decode" --launch-count 6 --metrics $M --csv \
    java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision fp8 --tokens 16 --runs 1 --warmup 0 --rotations 1 \
    > $OUT/ncu-$1.csv 2>&1)
  stamp "ncu $1 rc $?"
}
nc new ""; nc old $OLD
if [ $(( DEADLINE - SECONDS )) -gt 40 ]; then
  (cd /tmp/w && MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep2 timeout -s KILL $(left 60) bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.GpuMoeEngineGpuTest > $OUT/test-engine.log 2>&1)
  stamp "GpuMoeEngineGpuTest rc $?"
fi
xz -9 $OUT/clocks.csv
echo "SM clock MHz (min / median / max): $(xzcat $OUT/clocks.csv.xz | awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')"
grep -aE "✘|tests (successful|failed)" $OUT/test-*.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
for f in new old; do echo "== ncu $f"; grep -E '^"[0-9]' $OUT/ncu-$f.csv | awk -F'","' '{print $5" | "$(NF-2)" | "$NF}' | sed 's/"//g' | cut -c1-120; done
grep -E "^(###|qwen3|mixtral|deepseek)" $OUT/moe.log | cut -c1-150
