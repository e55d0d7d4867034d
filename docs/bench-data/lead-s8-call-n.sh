#!/usr/bin/env bash
# Session-8 lead, call n: the small-batch route kernel's logits summed across lanes by recursive halving (token_sums)
# instead of a butterfly per token. DecodePathGpuTest (every family, 16- and 32-token kernels, ties), moe bench at 16
# tokens new vs prev (3c4e220) alternating, ncu durations of the decode kernels.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-s8f
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/prevw && rm -rf /tmp/w && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w; tar -xJf $P/prevcl.tar.xz -C /tmp/prevw
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL 60 bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/logs/test.log 2>&1)
stamp "DecodePathGpuTest rc $?"
mb() { local n=$1 o=$2; shift 2; echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL 25 java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"; }
Q="--shapes qwen3-30b-a3b,deepseek-v3 --precision fp8,native --tokens 16 --runs 30"
mb new1 "" $Q; mb prev1 /tmp/prevw/gpu-kernels/target/classes $Q; mb new2 "" $Q; mb prev2 /tmp/prevw/gpu-kernels/target/classes $Q
nc() { (cd /tmp/w && timeout -s KILL 30 ncu --cache-control none --clock-control none -k regex:moe_decode_route --launch-skip 6 --launch-count 10 --metrics gpu__time_duration.sum --csv \
   java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision fp8 --tokens 16 --runs 8 --warmup 2 > /tmp/logs/ncu-$1.csv 2>&1); stamp "ncu $1 rc $?"; }
nc new ""; nc prev /tmp/prevw/gpu-kernels/target/classes
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
for f in /tmp/logs/ncu-*.csv; do echo "== $(basename $f): $(grep -E '^"[0-9]' $f | awk -F'","' '{print $NF}' | sed 's/"//g' | tr '\n' ' ')"; done
grep -E "^(###|qwen3|deepseek)" /tmp/logs/moe.log | cut -c1-100
