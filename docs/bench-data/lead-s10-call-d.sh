#!/usr/bin/env bash
# Session-10 lead, call D: the issue's benchmark table on the session's tree (425890c): moe bench with the torch peer,
# every shape and precision at 16, 512, 4096 and 32768 tokens (DeepSeek-V3 also 16384), 20 timed runs after 5 warm-up,
# with the new device-time columns.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-570}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a $OUT/env.txt
stamp unpacked
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 200 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
bench() { # name cap args...
  local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx64g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py" --runs 20 --warmup 5 --json /tmp/logs/bench-$n.json "$@" > /tmp/logs/bench-$n.log 2>&1)
  stamp "bench $n rc $?"
}
bench ds-fp8 150 --shapes deepseek-v3 --precision fp8 --tokens 16,512,4096,16384,32768
bench ds-bf16 150 --shapes deepseek-v3 --precision native --tokens 16,512,4096,16384,32768
bench mixtral 120 --shapes mixtral-8x7b --precision fp8,native --tokens 16,512,4096,32768
bench qwen3 100 --shapes qwen3-30b-a3b --precision fp8,native --tokens 16,512,4096,32768
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
head -2 /tmp/logs/bench-ds-fp8.log | tail -1
grep -hE "^(qwen|mixtral|deepseek)|\[peer\].*(rror|xception)" /tmp/logs/bench-*.log
