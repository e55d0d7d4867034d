#!/usr/bin/env bash
# Session-7 lead final call on the merged tree (route v2, decode operands ahead for long units, mcast7 variants):
# SASS, full GPU tests, moe bench with the torch peer (DeepSeek-V3 4096/16384 + a repeat; Mixtral + Qwen3 at 4096;
# all shapes at 16 and 512 tokens).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-380}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
rm -rf /tmp/w && mkdir -p /tmp/w && tar -xJf $P/classes.tar.xz -C /tmp/w
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 60 cuobjdump --dump-sass $F > /tmp/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/sass.txt | sort >> $OUT/env.txt
echo "SASS: $(grep -c ' HGMMA' $OUT/env.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' $OUT/env.txt) kernel/QGMMA pairs"
export PATH=/tmp/rt/jre/bin:$PATH
CP="/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*"
stamp "gpu tests"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 110) bash scripts/gpu-test.sh > /tmp/test.log 2>&1)
stamp "gpu tests rc $?"
sed 's/\x1b\[[0-9;]*m//g' /tmp/test.log | xz -9 > $OUT/gpu-tests.log.xz
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > /tmp/clocks.csv 2>&1 &
SMI=$!
PEER="python3 /tmp/w/scripts/bench/torch_moe_layer.py"
D=sparkmoe.gpu.gemmDynamicUnits
mb() { # name cap java-opts bench-args...
  local n=$1 cap=$2 j=$3; shift 3
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g $j -cp "$CP" dev.sparkmoe.cli.MoeCli bench --json /tmp/bench-$n.json "$@" > /tmp/bench-$n.log 2>&1)
  stamp "moe $n rc $?"
}
mb ds 90 "" --shapes deepseek-v3 --precision fp8,native --tokens 4096,16384 --peer "$PEER"
mb ds-r1 30 "" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384
mb bf16 70 "" --shapes mixtral-8x7b,qwen3-30b-a3b --precision native,fp8 --tokens 4096 --peer "$PEER"
mb t16 70 "" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16,512 --peer "$PEER"
kill $SMI 2>/dev/null
echo "SM clock MHz during the benches (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
xz -9 -c /tmp/clocks.csv > $OUT/clocks.csv.xz
(cd /tmp && tar -cJf $OUT/benches.tar.xz bench-*.json bench-*.log)
cat /tmp/bench-*.log > $OUT/benches.log
grep -aE "✘|tests (successful|failed)" /tmp/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200
for f in ds ds-r1 bf16 t16; do echo "== $f"; grep -E "^(deepseek|mixtral|qwen)|variant \[" /tmp/bench-$f.log | cut -c1-150; done
