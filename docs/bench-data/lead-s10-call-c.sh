#!/usr/bin/env bash
# Session-10 lead, call C: the final decode tree (GEMM tails; GEMM1 + GEMM2 as one launch dropped) - GPU suite, then prev (eeec805) vs new at 16 tokens, then the new bench columns (dev_ms: device time with the graph queued).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/var && rm -rf /tmp/w /tmp/prev /tmp/logs/* /tmp/var/* && mkdir -p /tmp/w /tmp/prev
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w; tar -xJf $P/prev-classes.tar.xz -C /tmp/prev; tar -xJf $P/variants.tar.xz -C /tmp/var
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
(cd /tmp/w && timeout -s KILL $(left 90) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary --select-class=dev.sparkmoe.gpu.DecodePathGpuTest > /tmp/logs/test-decode.log 2>&1)
stamp "DecodePathGpuTest rc $? $(grep -aE 'tests (successful|failed)' /tmp/logs/test-decode.log | tr -s ' ' | tr '\n' ' ')"
grep -a "small batch\]" /tmp/logs/test-decode.log | head -60 > $OUT/decode-test-lines.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 100 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
mb() { # label classes-dir java-opts bench-args...
  local n=$1 cp=$2 jo=$3; shift 3
  echo "### $n" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g $jo -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --json /tmp/logs/bench-$n.json "$@" >> /tmp/logs/moe.log 2>&1)
  stamp "moe $n rc $?"
}
for r in 1 2 3; do
  mb "r$r-prev" "/tmp/var/pc:/tmp/prev/gpu-kernels/target/classes" "" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --runs 100
  mb "r$r-new" "/tmp/w/gpu-kernels/target/classes" "" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 16 --runs 100
done
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
(cd /tmp/w && timeout -s KILL $(left 150) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/gpu-tests.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/gpu-tests.log | tr -s ' ' | tr '\n' ' ')"
mb "final" "/tmp/w/gpu-kernels/target/classes" "" --shapes qwen3-30b-a3b,mixtral-8x7b,deepseek-v3 --precision fp8,native --tokens 512,4096 --runs 30
grep -A40 "### final" /tmp/logs/moe.log | grep -E "^(shape|qwen3|mixtral|deepseek)" | tee -a $OUT/call.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
awk '/^### /{n=$2} /^(qwen3|mixtral|deepseek)/{printf "%-10s %-14s %-6s %s %s %s %s %s\n", n, $1, $2, $4, $7, $9, $12, $13}' /tmp/logs/moe.log | sort -k2,3 -s
