#!/usr/bin/env bash
# Session-7 lead, call j: the small-batch GEMMs' next-slab loads issued after the mmas (E: units >= 32 slabs; D0: every
# unit, fatbin overlay) vs a3c5dce (prev: loads before the mmas, units >= 32 slabs). DecodePathGpuTest on E, moe bench
# at 16 tokens alternating, ncu durations of Qwen3 FP8.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-150}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
(cd /tmp/w && MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep timeout -s KILL $(left 30) bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/logs/test-decode.log 2>&1)
stamp "DecodePathGpuTest rc $?"
mb() { # label overlay cap bench-args...
  local n=$1 o=$2 cap=$3; shift 3
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
Q="--shapes qwen3-30b-a3b --precision fp8,native --tokens 16"
ALL="--shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16"
mb E1 "" 20 $ALL; mb prev1 $P/prev 20 $ALL; mb D01 $P/d0 20 $ALL
mb D02 $P/d0 10 $Q; mb prev2 $P/prev 10 $Q; mb E2 "" 10 $Q; mb E3 "" 10 $Q; mb D03 $P/d0 10 $Q; mb prev3 $P/prev 10 $Q
nc() { # label overlay precision
  (cd /tmp/w && timeout -s KILL $(left 15) ncu --cache-control none --clock-control none -k regex:moe_decode --launch-skip 9 --launch-count 15 --metrics gpu__time_duration.sum --csv \
    java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision $3 --tokens 16 --runs 10 --warmup 2 \
    > /tmp/logs/ncu-$1-$3.csv 2>&1)
  stamp "ncu $1 $3 rc $?"
}
nc D0 $P/d0 fp8; nc prev $P/prev fp8
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test-*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)" /tmp/logs/test-*.log | cut -c1-220
for f in /tmp/logs/ncu-*.csv; do echo "== $(basename $f)"; grep -E '^"[0-9]' $f | awk -F'","' '{print $5" "$NF}' | sed 's/"//g' | awk '{a[$1]=a[$1]" "$2} END{for(k in a) print k, a[k]}'; done
grep -E "^(###|qwen3|mixtral|deepseek)" /tmp/logs/moe.log | cut -c1-100
