#!/usr/bin/env bash
# Session-14 lead, call g: call f's table ran at a median SM clock of 1500 MHz (session 13's: 1620) and its DeepSeek-V3
# BF16 4096-token row came out 13 % above session 13's; BF16 does not run the changed GEMM2. Re-measure DeepSeek-V3
# BF16 and FP8 at 4096 / 16384 tokens with the new classes and the old (c2ca3b1) in alternating JVMs, clocks logged.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-300}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wo /tmp/logs/* && mkdir -p /tmp/w /tmp/wo
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/old-classes.tar.xz -C /tmp/wo
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
NEW=/tmp/w/gpu-kernels/target/classes; OLD=/tmp/wo/gpu-kernels/target/classes
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 200 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
for r in 1 2; do for v in new old; do
  cp=$NEW; [ $v = old ] && cp=$OLD
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx64g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision native,fp8 --tokens 4096,16384 --runs 30 > /tmp/logs/ds-$v-r$r.log 2>&1)
  stamp "ds $v r$r rc $?"
done; done
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
for f in /tmp/logs/ds-*.log; do echo "== $f"; grep -hE "^deepseek-v3 " $f | cut -c1-140; done
