#!/usr/bin/env bash
# Session-18 lead, call h (review mends): the refactored bench scripts once more - deepgemm_side_by_side.py (the shared
# sampled reference, the recipe reference computed once per shape) on one gate+up and the down shape with DeepGEMM, and
# bf16_ceiling.py at 4096 tokens; check their figures against calls a and f.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg /tmp/w && rm -rf /tmp/logs/* /tmp/w/*
tar -xJf $G/rt/classes.tar.xz -C /tmp/w
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
timeout -s KILL $(left 150) python3 deepgemm_side_by_side.py --dg-path $D --module $FAT --shapes 6,3 --runs 10 --sample 256 \
  --out /tmp/logs --jsonl side.jsonl > /tmp/logs/side.log 2>&1
stamp "side by side rc $?"
timeout -s KILL $(left 150) python3 bf16_ceiling.py --module $FAT --dg-path $D --tokens 4096 --runs 5 --out /tmp/logs > /tmp/logs/ceiling.log 2>&1
stamp "bf16 ceiling rc $?"
cp /tmp/logs/side.log /tmp/logs/side.jsonl /tmp/logs/ceiling.log $OUT/
grep -hE "RESULT|recipe after|prod/DG|rror|Traceback" /tmp/logs/side.log | cut -c1-240
sed -n '/^ *T GEMM/,$p' /tmp/logs/ceiling.log; grep -h "err\"\|FAILED\|Traceback" /tmp/logs/ceiling.log | head
python3 -c "
import json
for l in open('/tmp/logs/bf16_ceiling.jsonl'):
    r = json.loads(l); print(r['gemm'], {k: round(v, 5) for k, v in r.items() if k.endswith(' err')})"
