#!/usr/bin/env bash
# Session-13 lead, call L: certwg's mbarrier waits with a suspend-time hint (H, alternate fatbin) vs the final head
# (A2): ncu duration of the logits kernel, DeepSeek-V3 FP8 4096 / 16384 in JVMs alternating A2 and H.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
DEADLINE=${DEADLINE:-200}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* /tmp/varH && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; cp -r $P/varH /tmp/varH
export PATH=/tmp/rt/jre/bin:$PATH
NEW=/tmp/w/gpu-kernels/target/classes
for v in A2 H; do
  cp=$NEW; [ $v = H ] && cp=/tmp/varH:$NEW
  (cd /tmp/w && timeout -s KILL $(left 40) ncu --kernel-name regex:bf16x3_wg --launch-skip 2 --launch-count 1 --section SpeedOfLight \
    java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu-$v.log 2>&1)
  stamp "ncu $v rc $? $(grep -a Duration /tmp/logs/ncu-$v.log | tr -s ' ')"
done
for r in 1 2; do for v in A2 H; do
  cp=$NEW; [ $v = H ] && cp=/tmp/varH:$NEW
  (cd /tmp/w && timeout -s KILL $(left 40) java -Xmx48g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 > /tmp/logs/ds-$v-r$r.log 2>&1)
  stamp "ds $v r$r rc $? $(grep -hE '^deepseek-v3 +fp8 +(4096|16384)' /tmp/logs/ds-$v-r$r.log | awk '{print $3": "$4" dev "$12}' | tr '\n' ' ')"
done; done
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
