#!/usr/bin/env bash
# Session-13 lead, call D: where certwg's logits kernel (A, f40c36d) spends its time. ncu of A (SOL, compute workload,
# warp states, scheduler, instruction stats) and two timing probes on alternate fatbins: N = no promotions at all
# (fp32 sums over all K: wrong bound, never used), T = hi promoted by fp32 TwoSum pairs instead of fp64.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 5 ? l : 5 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* /tmp/varN /tmp/varT && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
cp -r $P/varN /tmp/varN; cp -r $P/varT /tmp/varT
export PATH=/tmp/rt/jre/bin:$PATH
stamp unpacked
NEW=/tmp/w/gpu-kernels/target/classes
for v in A N T; do
  cp=$NEW; [ $v != A ] && cp=/tmp/var$v:$NEW
  S="--section SpeedOfLight"; [ $v = A ] && S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats --section MemoryWorkloadAnalysis"
  (cd /tmp/w && timeout -s KILL $(left 90) ncu --kernel-name regex:bf16x3_wg --launch-skip 2 --launch-count 1 $S \
    java -Xmx48g -Dsparkmoe.gpu.routerKernel=certwg -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu-$v.log 2>&1)
  stamp "ncu $v rc $?"
done
for v in A N T; do
  cp=$NEW; [ $v != A ] && cp=/tmp/var$v:$NEW
  (cd /tmp/w && timeout -s KILL $(left 60) java -Xmx48g -Dsparkmoe.gpu.routerKernel=certwg -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 20 --profile > /tmp/logs/prof-$v.log 2>&1)
  stamp "prof $v rc $?"
done
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
for v in A N T; do echo "== $v"; grep -h "stages" /tmp/logs/prof-$v.log | cut -c1-120; grep -aE "Duration|Compute \(SM\) Throughput" /tmp/logs/ncu-$v.log | head -3; done
sed -n '/Section: Compute Workload/,$p' /tmp/logs/ncu-A.log | grep -vE "^ *-+ *$|^ *$" | grep -vE "OPT|WRN|----" | cut -c1-110 | head -70
