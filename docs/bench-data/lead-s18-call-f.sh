#!/usr/bin/env bash
# Session-18 lead, call f: the engine's FP8 GEMMs beside DeepGEMM on all seven of the issue's shapes, three processes,
# on the classes of e6b2db5 (engine kernels byte-identical to 496876c), with the FP8 recipe figures on the gate+up shapes.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-500}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg /tmp/w && rm -rf /tmp/logs/* /tmp/w/*
tar -xJf $G/rt/classes.tar.xz -C /tmp/w
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader > $OUT/env.txt
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
D=/tmp/dg/DeepGEMM
if ! ls $D/deep_gemm/_C*.so >/dev/null 2>&1; then
  tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg
  cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
  sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
  (cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=10 DG_USE_LOCAL_VERSION=0 \
     timeout -s KILL 240 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1)
fi
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
FAT=/tmp/w/gpu-kernels/target/classes/dev/sparkmoe/kernels/moe_kernels.fatbin
cd $G/../scripts/bench
for i in 0 1 2 3 4 5 6; do timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 & done
wait; stamp "JIT warm done"
for rep in 1 2 3; do
  timeout -s KILL $(left 100) python3 deepgemm_side_by_side.py --dg-path $D --module $FAT --runs 30 --sample 128 --no-torch \
    --out /tmp/logs --jsonl side_by_side.jsonl > /tmp/logs/side_$rep.log 2>&1
  stamp "side by side $rep rc $?"
done
cp /tmp/logs/side_*.log /tmp/logs/side_by_side.jsonl $OUT/ 2>/dev/null
grep -h "prod/DG" /tmp/logs/side_*.log | cut -c1-160
