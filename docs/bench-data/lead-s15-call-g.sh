#!/usr/bin/env bash
# Session-15 lead, call g: where the stalls sit - ncu's source page (per-SASS-instruction warp-state samples, CSV) for
# production GEMM1 _m128usu2d and DeepGEMM's SM90 FP8 GEMM on shape 2 (32 x 2048).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg
cp $G/../scripts/bench/gemm_bench.py $G/../scripts/bench/deepgemm_side_by_side.py $G/
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
stamp start
tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg; D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=12 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL 200 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BPID=$!
cd $G
wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes 2 --dg-path $D > /tmp/logs/dg_warm.log 2>&1
stamp "JIT warm rc $?"
find /tmp/dgcache -name "*.cubin" | head -5 > /tmp/logs/dg_cubins.txt
for c in $(cat /tmp/logs/dg_cubins.txt); do echo "=== $c"; cuobjdump -sass $c; done > /tmp/logs/sass_deepgemm.txt 2>&1
stamp "DeepGEMM cubins: $(wc -l < /tmp/logs/dg_cubins.txt), SASS lines $(wc -l < /tmp/logs/sass_deepgemm.txt)"
for K in grouped_gemm1_swiglu_fp8_m128usu2d DG; do
  if [ $K = DG ]; then KN="regex:sm90_fp8"; KS=grouped_gemm1_swiglu_fp8_m128usu2d; else KN="regex:grouped_gemm1"; KS=$K; fi
  timeout -s KILL $(left 150) ncu --clock-control none --kernel-name "$KN" --section SourceCounters --section WarpStateStats \
    --page source --print-source sass --csv \
    python3 deepgemm_side_by_side.py --profile --dg-path $D --module moe_kernels.fatbin --shapes 2 --kernels $KS > /tmp/logs/ncu-src-$K.csv 2>&1
  stamp "ncu source $K rc $?: $(wc -l < /tmp/logs/ncu-src-$K.csv) lines"
done
(cd /tmp/logs && xz -k ncu-src-*.csv && cp ncu-src-*.csv.xz $OUT/)
head -c 3000 /tmp/logs/ncu-src-grouped_gemm1_swiglu_fp8_m128usu2d.csv
