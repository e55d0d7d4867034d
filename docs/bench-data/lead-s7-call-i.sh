#!/usr/bin/env bash
# Session-7 lead, call i: is DeepSeek-V3 FP8 at 4096 tokens slower than at c484ea7 (final call: 5.44 / 5.51 ms vs
# session 6's 5.14-5.35)? Whole class trees alternated, one JVM per run (new, old, new, old, new, old), FP8 4096 +
# 16384, no peer; then DecodePathGpuTest twice (the FP8 flip flake seen once per full run).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd); R=$P/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-170}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wold /tmp/logs/* && mkdir -p /tmp/w /tmp/wold
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/old-classes.tar.xz -C /tmp/wold
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
mb() { # label tree
  echo "### $1" >> /tmp/logs/moe.log
  (cd $2 && timeout -s KILL $(left 25) java -Xmx48g -cp "$2/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --json /tmp/logs/bench-$1.json >> /tmp/logs/moe.log 2>&1)
  stamp "moe $1 rc $?"
}
mb new1 /tmp/w; mb old1 /tmp/wold; mb new2 /tmp/w; mb old2 /tmp/wold; mb new3 /tmp/w; mb old3 /tmp/wold
for i in 1 2; do
  (cd /tmp/w && MOE_RUNTIME=/tmp/rt MOE_TEST_REPORTS=/tmp/rep-$i timeout -s KILL $(left 25) bash scripts/gpu-test.sh --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/logs/test-decode-$i.log 2>&1)
  stamp "DecodePathGpuTest $i rc $?"
done
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test-*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed)" /tmp/logs/test-*.log | cut -c1-220
grep -E "^(###|deepseek)" /tmp/logs/moe.log | cut -c1-120
