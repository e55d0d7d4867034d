#!/usr/bin/env bash
# Session-10 lead, call J: the grouped GEMMs' stage release with a warp barrier before lane 0's arrive (racecheck of call
# i: the producer's bulk copy into a stage raced with the other lanes' reads of its A scales). racecheck over gemm_bench
# check of the production FP8 GEMMs, old and new fatbin; then their speed side by side (ours only, alternating).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
DEADLINE=${DEADLINE:-330}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs; cd $G
K="grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm2_fp8_m128u_ybf16"
for v in new old; do
  timeout -s KILL $(left 100) compute-sanitizer --tool racecheck --target-processes all --print-limit 5 \
    python3 gemm_bench.py check --module $v.fatbin --kernels $K --out /tmp/logs > /tmp/logs/race-$v.log 2>&1
  stamp "racecheck $v rc $?: $(grep -h '^CHECK' /tmp/logs/race-$v.log) | $(grep -aE 'RACECHECK SUMMARY|ERROR SUMMARY' /tmp/logs/race-$v.log | tail -1)"
done
for rep in 1 2; do
  for v in old new; do
    timeout -s KILL $(left 40) python3 deepgemm_side_by_side.py --no-dg --no-torch --module $v.fatbin --out /tmp/logs --runs 30 --jsonl sbs-$v-$rep.jsonl \
      --ours "grouped_gemm1_swiglu_fp8_m128usu2d;grouped_gemm2_fp8_m128u_ybf16" > /tmp/logs/sbs-$v-$rep.log 2>&1
    stamp "timing $v $rep rc $?"
  done
done
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -ah "RESULT" /tmp/logs/sbs-*.log | cut -c1-200
for v in new old; do echo "== race $v"; grep -a "Race reported\|Hazard\|SUMMARY" /tmp/logs/race-$v.log | sort | uniq -c | head -5; done
