#!/usr/bin/env bash
# helper decode5, call 1: SASS of the small-batch kernels, the GPU test suite (DecodePathGpuTest included), then moe bench
# of the three issue shapes at 1, 16, 512 tokens (fp8 + native, stage profile, torch peer) with the small-batch path
# (default decodeMaxTokens=16) against the grouped path (variant decodeMaxTokens=0) in the same process.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-210}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
mkdir -p /tmp/rt /tmp/w
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
echo "unpacked at ${SECONDS}s"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 30 cuobjdump --dump-sass $F > /tmp/sass.txt 2>&1
awk '/Function :/{f=$3} f ~ /moe_decode/ && /HMMA|QMMA|IMMA|LDG|STL|LDL/{match($0,/(HMMA|QMMA|IMMA|LDG|STL|LDL)[.0-9A-Za-z]*/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/sass.txt | sort | tee -a $OUT/env.txt | grep -E "MMA" | head -20
export PATH=/tmp/rt/jre/bin:$PATH
echo "== gpu tests $(date +%T) (${SECONDS}s)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 75) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
grep -aE "✘|tests (successful|failed)|Test run finished" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220 | head -30
grep -aE "^\[small batch\]" $OUT/test.log | cut -c1-160 | head -60
echo "== moe bench $(date +%T) (${SECONDS}s)"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > $OUT/clocks.csv 2>&1 &
SMI=$!
(cd /tmp/w && timeout -s KILL $(left 130) java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py" --json $OUT/bench.json --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 \
  --precision fp8,native --tokens ${TOKENS:-1,16,512} --runs 20 --profile \
  --variant 'sparkmoe.gpu.decodeMaxTokens=0' > $OUT/bench.log 2>&1)
kill $SMI 2>/dev/null
echo "== end $(date +%T) (${SECONDS}s)"
echo "SM clock MHz during the bench (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' $OUT/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')"
xz -9 $OUT/clocks.csv
grep -vE "^\s*$|\[peer\]" $OUT/bench.log | cut -c1-330
