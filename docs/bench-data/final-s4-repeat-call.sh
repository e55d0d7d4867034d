#!/usr/bin/env bash
# Session-4 lead, repeat of the final layer figures with the order reversed: the engine timed first is fp32 Y
# (-Dsparkmoe.gpu.expertOutputPrecision=fp32), the default (auto = bf16 Y) is the --variant timed after it.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-170}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
mkdir -p /tmp/rt /tmp/w
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $P/classes.tar.xz -C /tmp/w; wait)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader | tee $OUT/env.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > $OUT/clocks.csv 2>&1 &
SMI=$!
cd /tmp/w
timeout -s KILL $(left 150) /tmp/rt/jre/bin/java -Xmx48g -Dsparkmoe.gpu.expertOutputPrecision=fp32 -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py" --json $OUT/bench.json --shapes deepseek-v3 --precision fp8,native \
  --tokens 4096,16384 --profile --variant 'sparkmoe.gpu.expertOutputPrecision=auto' > $OUT/bench.log 2>&1
echo "bench rc $? at ${SECONDS}s"
kill $SMI; echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' $OUT/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')"
xz -9 $OUT/clocks.csv
grep -vE "^\[peer\]|stages" $OUT/bench.log | cut -c1-200
grep -E "stages" $OUT/bench.log | cut -c1-250
