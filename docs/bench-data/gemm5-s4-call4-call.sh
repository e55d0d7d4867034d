#!/usr/bin/env bash
# Session-4 device call 4 (helper gemm5): GEMM1 production -> _m128usu2 (K-block loop unrolled by 2; +8-9 % on the
# K = 7168 issue shapes in call 3). gemm_bench check of _m128usu4 / _m128uu2; issue shapes (ours, interleaved); the GPU
# tests with the new default (GEMM1 _m128usu2, GEMM2 _u); moe bench DeepSeek-V3 FP8 4096/16384, one JVM per pair in
# the order N P B2 N B2 P: N = default, P = call-3 production (GEMM1 _m128us, GEMM2 _u), B2 = GEMM1 _m128usu2 +
# GEMM2 _m128uu2 (class overlays). Run from the repo root: bash .gpuwork-gemm5/call4.sh (carry .gpuwork-gemm5 .gpuwork-gpu).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
R=$G/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-120}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
stamp start
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $G/classes.tar.xz -C /tmp/w; wait) &
UNPACK=$!
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv,noheader > $OUT/env.txt 2>&1
cd $G
timeout -s KILL $(left 30) python3 gemm_bench.py check --module grouped_gemm.fatbin --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usu4,grouped_gemm2_fp8_m128uu2 > /tmp/logs/check.log 2>&1
echo "checks ok: $(grep -c '"ok": true' /tmp/logs/check.log) of 6; $(grep CHECK /tmp/logs/check.log)" | tee -a $OUT/call.log
OURS="grouped_gemm1_swiglu_fp8_m128usu2,grouped_gemm1_swiglu_fp8_m128us,grouped_gemm1_swiglu_fp8_m128usu4;grouped_gemm2_fp8_u,grouped_gemm2_fp8_m128u,grouped_gemm2_fp8_m128uu2"
timeout -s KILL $(left 35) python3 deepgemm_side_by_side.py --no-dg --no-torch --module grouped_gemm.fatbin --out /tmp/logs --runs 20 --ours "$OURS" > /tmp/logs/issue.log 2>&1
stamp "issue shapes rc $?"
wait $UNPACK
export PATH=/tmp/rt/jre/bin:$PATH
stamp "gpu tests (GEMM1 _m128usu2, GEMM2 _u)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 55) bash scripts/gpu-test.sh > /tmp/logs/test.log 2>&1)
stamp "gpu tests rc $?"
grep -aE "✘|tests (successful|failed)" /tmp/logs/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | tee -a $OUT/call.log
mb() {
  echo "### production $1" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 20) java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile >> /tmp/logs/moe.log 2>&1)
}
for c in N P B2 N B2 P; do
  case $c in N) d="";; P) d=$G/alt-P;; B2) d=$G/alt-B2;; esac
  mb "$c" "$d"
done
stamp "moe bench done"
tar -cJf $OUT/logs.tar.xz -C /tmp/logs .
cp /tmp/logs/moe.log /tmp/logs/issue.log $OUT/
stamp end
grep -E "^###|^deepseek-v3|stages" /tmp/logs/moe.log | cut -c1-250
sed -n '/^DeepSeek-V3 EP8 gate+up, 32 x 128/,$p' /tmp/logs/issue.log | cut -c1-300
