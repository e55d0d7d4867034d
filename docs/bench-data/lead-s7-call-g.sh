#!/usr/bin/env bash
# Session-7 lead, call g: decode GEMMs load each slab's operands one slab ahead into alternating register sets (A, no copies),
# vs the route-v2 build (prev, fatbin overlay). Decode + engine GPU tests
# on A (merged tree incl. mcast7), moe bench at 16 tokens alternating, ncu durations.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-200}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
for c in DecodePathGpuTest; do
  (cd /tmp/w && MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep-$c timeout -s KILL $(left 70) bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.$c > /tmp/logs/test-$c.log 2>&1)
  stamp "$c rc $?"
done
mb() { # label overlay cap bench-args...
  local n=$1 o=$2 cap=$3; shift 3
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left $cap) java -Xmx48g -cp "${o:+$o:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
Q="--shapes qwen3-30b-a3b --precision fp8,native --tokens 16"
ALL="--shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16"
mb A1 "" 25 $ALL; mb prev1 $P/prev 25 $ALL
mb prev2 $P/prev 12 $Q; mb A2 "" 12 $Q; mb A3 "" 12 $Q; mb prev3 $P/prev 12 $Q
nc() { # label overlay precision
  (cd /tmp/w && timeout -s KILL $(left 20) ncu --cache-control none --clock-control none -k regex:moe_decode --launch-skip 9 --launch-count 15 --metrics gpu__time_duration.sum --csv \
    java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes qwen3-30b-a3b --precision $3 --tokens 16 --runs 10 --warmup 2 \
    > /tmp/logs/ncu-$1-$3.csv 2>&1)
  stamp "ncu $1 $3 rc $?"
}
nc A "" fp8; nc prev $P/prev fp8; nc A "" native
J="java -Xmx48g -cp /tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/* dev.sparkmoe.cli.MoeCli bench"
kname=moe_decode_gemm1_fp8_t16
(cd /tmp/w && timeout -s KILL $(left 30) ncu --set full --import-source no --cache-control none --clock-control none -k regex:$kname --launch-skip 3 --launch-count 1 \
  -o /tmp/logs/$kname $J --shapes qwen3-30b-a3b --tokens 16 --precision fp8 --runs 6 --warmup 1 --rotations 2 > /tmp/logs/ncu-run-$kname.log 2>&1)
ncu -i /tmp/logs/$kname.ncu-rep --page source --csv --print-source sass > /tmp/logs/$kname-sass.csv 2>&1
ncu -i /tmp/logs/$kname.ncu-rep --page details > /tmp/logs/$kname-details.txt 2>&1
rm -f /tmp/logs/$kname.ncu-rep
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test-*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)" /tmp/logs/test-*.log | cut -c1-220 | head -20
for f in /tmp/logs/ncu-*.csv; do echo "== $(basename $f)"; grep -E '^"[0-9]' $f | awk -F'","' '{print $5" "$NF}' | sed 's/"//g' | awk '{a[$1]=a[$1]" "$2} END{for(k in a) print k, a[k]}'; done
grep -E "^(###|qwen3|mixtral|deepseek)" /tmp/logs/moe.log | cut -c1-120
