#!/usr/bin/env bash
# Session 7, helper mcast7, device call 1: the 2-CTA pair GEMM1 with B multicast (grouped_gemm1_swiglu_fp8_m128usu2dc)
# - SASS: spill locations of the new kernel (cuobjdump);
# - gemm_bench.py check of _m128usu2dc and _m128usu2d (float64 reference, poisoned outputs, fresh seed, ragged / no-skip /
#   large cases, bitwise repeat);
# - mcast7-bitwise.py: _m128usu2dc == _m128usu2d bitwise on 6 operand sets (incl. one-block experts, odd block counts),
#   4 launches each on one counter pair;
# - DeepGEMM 2.6.1 (built here meanwhile) side by side on the issue's 7 shapes, twice (two processes): production
#   GEMM1 _m128usu2d, the pair kernel _m128usu2dc, static _m128usu2, GEMM2 _u (interleaved, same operands);
# - gemm_bench.py layer (DeepSeek-V3 gate+up 4096 / 16384 tokens): _m128usu2d vs _m128usu2dc, if time is left.
# Run from /work/main/.gpuwork-mcast7 (files copied there: moe_kernels.fatbin, gemm_bench.py, deepgemm_side_by_side.py,
# mcast7-bitwise.py); DeepGEMM source from ../.gpuwork-dg/deepgemm-src.tar.xz.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd); D0=$G/../.gpuwork-dg
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > /tmp/logs/env.txt 2>&1
stamp "start"
# ---- DeepGEMM build in the background (CPU only)
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
tar -xJf $D0/deepgemm-src.tar.xz -C /tmp/dg; D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=12 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL 150 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BPID=$!
cd $G
# ---- SASS: where the pair kernel spills (ptxas here: 12 bytes; predicted in the 40-register producer)
cuobjdump -sass -fun grouped_gemm1_swiglu_fp8_m128usu2dc moe_kernels.fatbin > /tmp/logs/dc.sass 2>&1
{ echo "QGMMA: $(grep -c QGMMA /tmp/logs/dc.sass)  STL: $(grep -c 'STL' /tmp/logs/dc.sass)  LDL: $(grep -c 'LDL' /tmp/logs/dc.sass)"
  grep -n -B6 -A2 'STL\|LDL' /tmp/logs/dc.sass | cut -c1-110 | head -120; } > /tmp/logs/dc_spills.txt 2>&1
head -1 /tmp/logs/dc_spills.txt
# ---- correctness
K2="grouped_gemm1_swiglu_fp8_m128usu2dc,grouped_gemm1_swiglu_fp8_m128usu2d"
timeout -s KILL $(left 110) python3 gemm_bench.py check --module moe_kernels.fatbin --kernels $K2 --out /tmp/logs > $OUT/check.log 2>&1
CRC=$?; stamp "check rc $CRC: $(grep -h '^CHECK' $OUT/check.log)"
HUNG=0; [ $CRC -eq 137 ] && HUNG=1
if [ $HUNG -eq 0 ]; then
  timeout -s KILL $(left 90) python3 mcast7-bitwise.py --module moe_kernels.fatbin > $OUT/bitwise.log 2>&1
  BRC=$?; stamp "bitwise rc $BRC: $(grep -h '^BITWISE' $OUT/bitwise.log)"
  [ $BRC -eq 137 ] && HUNG=1
fi
wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
OURS="grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2dc,grouped_gemm1_swiglu_fp8_m128usu2;grouped_gemm2_fp8_u"
export DG_JIT_CACHE_DIR=/tmp/dgcache
if [ $HUNG -eq 0 ]; then
  if [ -n "$SO" ]; then
    for i in 0 1 2 3 4 5 6; do timeout -s KILL $(left 50) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 & done
    wait; stamp "JIT warm done"
    DGARG="--dg-path $D"
  else
    tail -20 /tmp/logs/dg_build.log; DGARG="--no-dg"
  fi
  for rep in 1 2; do
    timeout -s KILL $(left 70) python3 deepgemm_side_by_side.py $DGARG --module moe_kernels.fatbin --out $OUT --runs 30 \
      --ours "$OURS" --jsonl dg_side_by_side.jsonl > /tmp/logs/dg_main_$rep.log 2>&1
    stamp "side by side $rep rc $?"
  done
  L=$(( DEADLINE - SECONDS - 15 ))
  if [ $L -gt 40 ]; then
    SKIPS="skip,noskip,lookahead,baseline,pf,pfs,m128,m128p,m128s,m128n128,u,m128u,m128us,m128usp,m128usu2,m128usu4,m128uu2,m128usu2h,ud,d,m128usu2g,m128usu2g1,m128usu2gd,g"
    timeout -s KILL $L python3 gemm_bench.py layer --module moe_kernels.fatbin --fp8-only --shapes 0,2 --runs 20 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
    stamp "layer rc $?"
  fi
fi
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> /tmp/logs/env.txt 2>&1
cat /tmp/logs/dg_main_*.log > $OUT/side_by_side.log 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== check"; grep -h '"kernel"' $OUT/check.log | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l); print(r['kernel'][-12:], 'ok' if r.get('ok') else 'FAIL', {k:r.get(k) for k in ('err_vs_requantized_ref','elements_off_bound','bitwise_repeat','no_skip','large','error') if k in r})"
echo "==== bitwise"; grep -h '"case"\|BITWISE' $OUT/bitwise.log | cut -c1-220
echo "==== layer"; grep -A4 "^shape" /tmp/logs/layer.log | cut -c1-200
echo "==== side by side"; grep -h "DG \|RESULT" /tmp/logs/dg_main_*.log | grep -v RESULT | cut -c1-230
