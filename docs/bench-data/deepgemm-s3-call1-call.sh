#!/usr/bin/env bash
# Session-3 device call (helper dg): build DeepGEMM 2.6.1 from the carried source bundle with the system g++, fill its
# JIT cache in parallel, and time it side by side with our FP8 grouped GEMMs (scripts/bench/deepgemm_side_by_side.py)
# on the issue's 7 shapes. Every stage is capped so the whole call ends by DEADLINE seconds; progress goes to $OUT.
# Run from the repo root:  bash .gpuwork-dg/call.sh   (carry .gpuwork-dg)
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
R=$(cd "$G/.." && pwd)
S=$G/deepgemm_side_by_side.py   # copies of scripts/bench/{deepgemm_side_by_side,gemm_bench}.py (a run sends /work/main)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-188}
OPT=${DG_HOST_OPT:--O1}   # host-side C++ of the extension only; DeepGEMM's kernels are JIT-compiled by nvcc with its own -O3
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/dg_progress.txt; }
stamp "start"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
  nproc; which nvcc g++ gcc c++; nvcc --version | tail -1; g++ --version | head -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
  python3 -c "import sysconfig as s;print('sysconfig CC', s.get_config_var('CC'), '| CXX', s.get_config_var('CXX'), '| LDSHARED', s.get_config_var('LDSHARED'))"; } > $OUT/dg_env.txt 2>&1
cat $OUT/dg_env.txt
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
# headers torch's CUDA context pulls in (cusparse.h, cublas_v2.h, ...) if the toolkit lacks them: the pip CUDA packages'
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP

GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
echo "host compilers: $GCC $GXX; g++ in PATH: $(which -a g++ | tr '\n' ' ')" >> $OUT/dg_env.txt
# 0. unpack (DeepGEMM HEAD = 2.6.1, CUTLASS v4.2.1 include/, fmt include/); the JIT includes cute/cutlass from deep_gemm/include
mkdir -p /tmp/dg && tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg || { stamp "unpack failed"; exit 1; }
D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'$OPT', '-g0', '-fPIC'/" $D/setup.py
stamp "unpacked; building the extension ($OPT -g0, CXX=$GXX)"

# 1. our kernels + torch while the extension builds (insurance: figures even if DeepGEMM fails; killed when the build ends)
timeout -s KILL $(left 120) python3 $S --no-dg --module $G/grouped_gemm.fatbin --out $OUT --jsonl ours_during_build.jsonl \
  > $OUT/ours_during_build.log 2>&1 &
OURS_PID=$!

# 2. the extension (python_api.cpp, one translation unit) with the system g++ (a static-libstdc++ wrapper breaks the JIT)
T0=$SECONDS
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=16 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL $(left 125) python3 setup.py build_ext --inplace > $OUT/dg_build.log 2>&1)
RC=$?
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1)
if [ -z "$SO" ] && [ $(( SECONDS - T0 )) -lt 25 ]; then
  stamp "setup.py failed early (rc $RC): minimal CUDAExtension build of the same source and flags"
  (cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" timeout -s KILL $(left 120) python3 - >> $OUT/dg_build.log 2>&1 <<EOF
import sys, torch
from setuptools import setup
from torch.utils.cpp_extension import CUDAExtension, CUDA_HOME
sys.argv = ['setup.py', 'build_ext', '--inplace']
setup(name='deep_gemm', packages=[], ext_modules=[CUDAExtension('deep_gemm._C', ['csrc/python_api.cpp'],
      include_dirs=[f'{CUDA_HOME}/include', f'{CUDA_HOME}/include/cccl', 'deep_gemm/include', 'third-party/cutlass/include', 'third-party/fmt/include'],
      libraries=['cudart', 'nvrtc'], library_dirs=[f'{CUDA_HOME}/lib64'],
      extra_compile_args=['-std=c++17', '$OPT', '-g0', '-fPIC', '-Wno-psabi', '-Wno-deprecated-declarations',
                          f'-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}'])])
EOF
  )
  RC=$?
  SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1)
fi
stamp "extension build rc $RC in $(( SECONDS - T0 )) s: ${SO:-no .so}"
kill $OURS_PID 2>/dev/null; wait $OURS_PID 2>/dev/null
grep -E "RESULT|failed|Error" $OUT/ours_during_build.log | cut -c1-250
if [ -z "$SO" ]; then
  grep -E "error|Error" $OUT/dg_build.log | head -20 | cut -c1-300; tail -5 $OUT/dg_build.log | cut -c1-300
  stamp "no DeepGEMM extension: stop"; exit 1
fi
ldd $SO | grep -E "not found|stdc\+\+|nvrtc|cudart" >> $OUT/dg_env.txt

# 3. JIT cache filled by one process per shape, in parallel (NVCC, DeepGEMM's flags); the measuring process starts
#    at once and finds each shape's kernel in the cache, or compiles it itself (the cache tolerates the race)
export DG_JIT_CACHE_DIR=/tmp/dgcache DG_JIT_PRINT_COMPILER_COMMAND=0
for i in 0 1 2 3 4 5 6; do
  timeout -s KILL $(left 100) python3 $S --warm-only --shapes $i --dg-path $D >> $OUT/dg_warm.log 2>&1 &
done
stamp "JIT warm processes started"

# 4. side by side, interleaved per shape, DeepGEMM + our production / alternative tile + torch FP8 rowwise
timeout -s KILL $(left 200) python3 $S --dg-path $D --module $G/grouped_gemm.fatbin --out $OUT --runs ${RUNS:-20} \
  > $OUT/dg_main.log 2>&1
stamp "side by side rc $?"
wait
grep -E "WARM|Error|error" $OUT/dg_warm.log | cut -c1-200
ls $DG_JIT_CACHE_DIR/cache 2>/dev/null | sed 's/^/jit cache: /' >> $OUT/dg_env.txt
grep -E "RESULT|failed" $OUT/dg_main.log | cut -c1-300
stamp "end"
sed -n '/^shape (TFLOPS/,$p' $OUT/dg_main.log
