#!/usr/bin/env bash
# Session-4 final check on the merged tree (classes.tar.xz = gpu-kernels/target/{classes,test-classes} + scripts):
# SASS, the GPU test suite, then moe bench with the torch peer: DeepSeek-V3 fp8+native 4096/16384 (stage profile,
# optional variants in $DS_VARIANTS), Mixtral + Qwen3 at 4096 (BF16 bar), all shapes at 16 tokens (weight-read bar).
# Every stage is capped so the whole command ends by DEADLINE seconds.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-450}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
mkdir -p /tmp/rt /tmp/w
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
echo "unpacked at ${SECONDS}s"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 30 cuobjdump --dump-sass $F > /tmp/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/sass.txt | sort >> $OUT/env.txt
echo "SASS: $(grep -c ' HGMMA' $OUT/env.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' $OUT/env.txt) kernel/QGMMA pairs"
export PATH=/tmp/rt/jre/bin:$PATH
echo "== gpu tests $(date +%T) (${SECONDS}s)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left ${TEST_CAP:-120}) bash scripts/gpu-test.sh > $OUT/test.log 2>&1)
grep -aE "✘|tests (successful|failed|skipped)|Test run finished" $OUT/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-220
bench() { # name cap args...
  local name=$1 cap=$2; shift 2
  echo "== moe bench $name $(date +%T) (${SECONDS}s)"
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py" --json $OUT/bench-$name.json "$@" > $OUT/bench-$name.log 2>&1)
  grep -E "^(shape|qwen|mixtral|deepseek)|variant \[" $OUT/bench-$name.log | grep -v "variant stages" | cut -c1-200
}
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > $OUT/clocks.csv 2>&1 &
SMI=$!
eval "VARS=(${DS_VARIANTS:-})"
bench ds ${DS_CAP:-170} --shapes deepseek-v3 --precision fp8,native --tokens 4096,16384 --profile "${VARS[@]}"
bench bf16 ${BF_CAP:-70} --shapes mixtral-8x7b,qwen3-30b-a3b --precision native,fp8 --tokens 4096
bench t16 ${T16_CAP:-90} --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16
kill $SMI 2>/dev/null
echo "SM clock MHz during the benches (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' $OUT/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')"
xz -9 $OUT/clocks.csv
(cd $OUT && tar -cJf benches.tar.xz bench-*.log bench-*.json && rm -f bench-*.json)
echo "== end $(date +%T) (${SECONDS}s)"
grep -h "stages (ms)" $OUT/bench-ds.log | head -4 | cut -c1-250
