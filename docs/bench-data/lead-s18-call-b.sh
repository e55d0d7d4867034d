#!/usr/bin/env bash
# Session-18 lead, call b: the layer's kernels one by one at 4096 tokens (ncu: device duration of every kernel of a few
# graph replays, clocks and caches left as they are), Mixtral BF16 / FP8, DeepSeek-V3 FP8, Qwen3 FP8 - where the
# non-GEMM time goes in the graph (the --profile stage times carry host launch gaps).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-560}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
R=$G/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w
JAVA=/tmp/rt/jre/bin/java
CLS=/tmp/w/gpu-kernels/target/classes
stamp unpacked
prof() {  # tag shape precision
  (cd /tmp/w && timeout -s KILL $(left 110) ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
     --launch-skip ${SKIP:-300} --launch-count ${COUNT:-60} --csv --print-units base \
     $JAVA -Xmx64g -cp "$CLS:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes $2 --precision $3 --tokens ${TOK:-4096} \
     --runs 3 --warmup 2 --warmup-ms 100 > /tmp/logs/ncu-$1.csv 2>/tmp/logs/ncu-$1.err)
  stamp "ncu $1 rc $?"
  python3 - /tmp/logs/ncu-$1.csv <<'PY' | tee /tmp/logs/sum-$1.txt
import csv, sys, re
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
if rows:
    hdr = rows[0]
    ki, vi = hdr.index("Kernel Name"), hdr.index("Metric Value")
    for r in rows[1:]:
        print(f"{float(r[vi].replace(',', '')) / 1e3:9.1f} us  {re.sub(r'[(<].*', '', r[ki])}")
PY
}
SKIP=30 COUNT=40 prof mixtral-bf16 mixtral-8x7b native
SKIP=30 COUNT=40 prof mixtral-fp8 mixtral-8x7b fp8
SKIP=30 COUNT=40 prof qwen3-fp8 qwen3-30b-a3b fp8
SKIP=30 COUNT=40 TOK=32768 prof mixtral-bf16-32k mixtral-8x7b native
SKIP=300 COUNT=40 TOK=16384 prof ds-fp8-16k deepseek-v3 fp8
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
for f in /tmp/logs/ncu-*.err; do tail -n 3 $f | cut -c1-200; done
