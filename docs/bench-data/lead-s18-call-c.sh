#!/usr/bin/env bash
# Session-18 lead, call c: call a's BF16 ceiling again in a second process pair (the Mixtral BF16 layer with the torch
# peer, then bf16_ceiling.py with DeepGEMM), for its spread.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-400}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/dg && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
R=$G/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w
JAVA=/tmp/rt/jre/bin/java
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
     timeout -s KILL 240 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
  BPID=$!
fi
stamp unpacked
CLS=/tmp/w/gpu-kernels/target/classes; FAT=$CLS/dev/sparkmoe/kernels/moe_kernels.fatbin
(cd /tmp/w && timeout -s KILL $(left 150) $JAVA -Xmx64g -cp "$CLS:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --peer "python3 $G/../scripts/bench/torch_moe_layer.py" --shapes mixtral-8x7b --precision native --tokens 4096,32768 \
  --runs 20 --warmup 5 --json /tmp/logs/mixtral-bf16.json > /tmp/logs/mixtral-bf16.log 2>&1)
stamp "mixtral bf16 table rc $?"
PEER=$(python3 -c "
import json; d=json.load(open('/tmp/logs/mixtral-bf16.json'))
print(','.join(f\"{r['tokens']}={r['torch_ms']:.4f}\" for r in d if r.get('torch_ms')))" 2>/dev/null)
[ -n "${BPID:-}" ] && wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
cd $G/../scripts/bench
timeout -s KILL $(left 200) python3 bf16_ceiling.py --module $FAT $([ -n "$SO" ] && echo --dg-path $D) --runs 20 \
  --peer-ms "$PEER" --out /tmp/logs > /tmp/logs/bf16_ceiling.log 2>&1
stamp "bf16 ceiling rc $?"
cp /tmp/logs/*.log /tmp/logs/*.json* $OUT/ 2>/dev/null
grep -h "^mixtral" /tmp/logs/mixtral-bf16.log
sed -n '/^ *T GEMM/,$p' /tmp/logs/bf16_ceiling.log; grep -h "FAILED\|rror" /tmp/logs/bf16_ceiling.log | head -5
