#!/usr/bin/env bash
# Session-6 lead: DeepGEMM 2.6.1 side by side with the FP8 production GEMMs (GEMM1 _m128usu2d = dynamic units, GEMM2 _u)
# and their v5 siblings on the issue's 7 shapes (interleaved, same operands, one process). Recipe of gemm5's call 2.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd); D0=$G/../.gpuwork-dg
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-250}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
tar -xJf $D0/deepgemm-src.tar.xz -C /tmp/dg; D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
stamp "DeepGEMM build"
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=14 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL $(left 100) python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1)
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "built: ${SO:-FAILED}"
cd $G
OURS="grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2;grouped_gemm2_fp8_u,grouped_gemm2_fp8_ud"
export DG_JIT_CACHE_DIR=/tmp/dgcache
if [ -n "$SO" ]; then
  for i in 0 1 2 3 4 5 6; do timeout -s KILL $(left 45) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 & done
  wait; stamp "JIT warm done"
  timeout -s KILL $(left 100) python3 deepgemm_side_by_side.py --dg-path $D --module moe_kernels.fatbin --out $OUT --runs 20 --ours "$OURS" > $OUT/dg_main.log 2>&1
else
  tail -20 /tmp/logs/dg_build.log
  timeout -s KILL $(left 80) python3 deepgemm_side_by_side.py --no-dg --module moe_kernels.fatbin --out $OUT --runs 20 --ours "$OURS" > $OUT/dg_main.log 2>&1
fi
stamp "side by side rc $?"
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
tail -40 $OUT/dg_main.log
