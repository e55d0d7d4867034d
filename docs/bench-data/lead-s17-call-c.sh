#!/usr/bin/env bash
# Session-17 lead, call c: the tree at 0c0ac67 (BF16 GEMM2 lookahead; GPU suite ran on it in call a): SASS counts, the issue's
# benchmark table with the torch peer (every shape and precision at 16, 512, 4096 and 32768 tokens, DeepSeek-V3 also
# 16384), then DeepSeek-V3 FP8 4096/16384 in two more JVMs.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)/rt; ROOT=$(cd "$P/../.." && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-560}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
NEW=/tmp/w/gpu-kernels/target/classes
F=$NEW/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 60 cuobjdump --dump-sass $F > /tmp/logs/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/logs/sass.txt | sort > /tmp/logs/sass-counts.txt
cp /tmp/logs/sass-counts.txt $OUT/
echo "SASS: $(grep -c ' HGMMA' /tmp/logs/sass-counts.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' /tmp/logs/sass-counts.txt) kernel/QGMMA pairs, $(grep -c 'Function :' /tmp/logs/sass.txt) functions" | tee -a $OUT/call.log
bench() { # name cap args...
  local n=$1 cap=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx64g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --peer "python3 $ROOT/scripts/bench/torch_moe_layer.py" --runs 20 --warmup 5 --json /tmp/logs/table-$n.json "$@" > /tmp/logs/table-$n.log 2>&1)
  stamp "table $n rc $?"
}
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 200 > /tmp/logs/clocks-table.csv 2>&1 &
SMI=$!
bench ds-fp8 150 --shapes deepseek-v3 --precision fp8 --tokens 16,512,4096,16384,32768
bench ds-bf16 150 --shapes deepseek-v3 --precision native --tokens 16,512,4096,16384,32768
bench mixtral 120 --shapes mixtral-8x7b --precision fp8,native --tokens 16,512,4096,32768
bench qwen3 100 --shapes qwen3-30b-a3b --precision fp8,native --tokens 16,512,4096,32768
for r in 2 3; do
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 --json /tmp/logs/ds-r$r.json > /tmp/logs/ds-r$r.log 2>&1)
  stamp "ds r$r rc $?"
done
kill $SMI 2>/dev/null
echo "table SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks-table.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
head -2 /tmp/logs/table-ds-fp8.log | tail -1
grep -hE "^(qwen|mixtral|deepseek)|\[peer\].*(rror|xception)|note" /tmp/logs/table-*.log | cut -c1-160
grep -hE "^deepseek-v3 +fp8 +(4096|16384)|router:" /tmp/logs/ds-r*.log
