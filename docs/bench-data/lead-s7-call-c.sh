#!/usr/bin/env bash
# Session-7 lead, call c: the route kernel v2 (register-held top-k with warp reductions, x staged once in fp64):
# full GPU tests, then moe bench at 16 tokens new vs old (c484ea7's fatbin first on the classpath), alternating, and
# ncu durations of the decode kernels (Qwen3 FP8) for both builds.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-280}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 130) bash scripts/gpu-test.sh > /tmp/logs/gpu-tests.log 2>&1)
stamp "gpu tests rc $?"
OLD=$P/old
mb() { # label overlay cap bench-args...
  local n=$1 o=$2 cap=$3; shift 3
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
ALL="--shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16"
Q="--shapes qwen3-30b-a3b --precision fp8,native --tokens 16"
mb new1 "" 30 $ALL
mb old1 $OLD 30 $ALL
mb old2 $OLD 15 $Q
mb new2 "" 15 $Q
nc() { # label overlay precision
  (cd /tmp/w && timeout -s KILL $(left 20) ncu --cache-control none --clock-control none -k regex:moe_decode --launch-skip 9 --launch-count 15 --metrics gpu__time_duration.sum --csv \
    java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision $3 --tokens 16 --runs 10 --warmup 2 \
    > /tmp/logs/ncu-$1-$3.csv 2>&1)
  stamp "ncu $1 $3 rc $?"
}
nc new "" fp8; nc old $OLD fp8; nc new "" native
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/gpu-tests.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|skipped)" /tmp/logs/gpu-tests.log | cut -c1-200 | head -20
for f in /tmp/logs/ncu-*.csv; do echo "== $(basename $f)"; grep -E '^"[0-9]' $f | awk -F'","' '{print $5" "$NF}' | sed 's/"//g' | awk '{a[$1]=a[$1]" "$2} END{for(k in a) print k, a[k]}'; done
grep -E "^(###|qwen3|mixtral|deepseek)" /tmp/logs/moe.log | cut -c1-120
