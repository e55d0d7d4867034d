#!/usr/bin/env bash
# Session-11 lead, call A: the head (2acde40: grouped GEMM stage release with __syncwarp, bench overrun counter):
# the GPU suite, SASS counts, DeepSeek-V3 FP8 4096/16384 and Qwen3 FP8 16 tokens (dev_ms with its overrun count).
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader | tee $OUT/env.txt
stamp unpacked
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
(cd /tmp/w && timeout -s KILL $(left 220) java -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
F=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
timeout 60 cuobjdump --dump-sass $F > /tmp/logs/sass.txt 2>&1
awk '/Function :/{f=$3} /[HQ]GMMA/{match($0,/[HQ]GMMA\.[0-9x]+/); c[f" "substr($0,RSTART,RLENGTH)]++} END{for(k in c) print "SASS", k, c[k]}' /tmp/logs/sass.txt | sort > /tmp/logs/sass-counts.txt
cp /tmp/logs/sass-counts.txt $OUT/
echo "SASS: $(grep -c ' HGMMA' /tmp/logs/sass-counts.txt) kernel/HGMMA pairs, $(grep -c ' QGMMA' /tmp/logs/sass-counts.txt) kernel/QGMMA pairs, $(grep -c 'Function :' /tmp/logs/sass.txt) functions" | tee -a $OUT/call.log
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 200 > /tmp/logs/clocks.csv 2>&1 &
SMI=$!
(cd /tmp/w && timeout -s KILL $(left 80) java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --runs 30 --json /tmp/logs/bench-ds.json >> /tmp/logs/moe.log 2>&1)
stamp "moe ds rc $?"
(cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -cp "/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes qwen3-30b-a3b --precision fp8,native --tokens 16 --runs 100 --json /tmp/logs/bench-q.json >> /tmp/logs/moe.log 2>&1)
stamp "moe q rc $?"
kill $SMI 2>/dev/null
echo "SM clock MHz (min / median / max): $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}')" | tee -a $OUT/call.log
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/test.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
grep -aE "^(shape|deepseek|qwen3|note|  )" /tmp/logs/moe.log | cut -c1-240
grep -o '"device_queue_overruns"[^,}]*' /tmp/logs/bench-*.json
