#!/usr/bin/env bash
# Session-4 device call 2 (helper gemm5): v5 kernels (warp-uniform descriptor arithmetic _m128u / _u, staged e4m3
# output _m128us). SASS stats; gemm_bench check of the new kernels (+ session-3 production) in parallel with the GPU
# tests (production = GEMM1 _m128us, GEMM2 _u) while DeepGEMM builds; DeepGEMM side by side on the 7 issue shapes
# (interleaved, same operands); layer shapes; moe bench DeepSeek-V3 FP8 with the new production (+ torch peer) and the
# session-3 production (class overlay), one JVM each. Run from the repo root: bash .gpuwork-gemm5/call2.sh
# (carry .gpuwork-gemm5 .gpuwork-dg .gpuwork-gpu). <= 8 files in $OUT.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
R=$G/../.gpuwork-gpu
D0=$G/../.gpuwork-dg
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-330}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
stamp start
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $G/classes.tar.xz -C /tmp/w; wait) &
UNPACK=$!
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv,noheader
  nvcc --version | tail -1; python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)

# SASS: instruction mix of the production and v5 kernels (whole function: count, QGMMA, R2UR, uniform ops)
cuobjdump --dump-sass $G/grouped_gemm.fatbin > /tmp/sass.txt 2>&1
awk '/Function :/{f=$3} f ~ /_fp8(_m128|_m128u|_m128us|_u)?$/ && /^ +\/\*[0-9a-f]+\*\//{n[f]++; if (/QGMMA/) q[f]++; if (/R2UR/) r[f]++; if (/ U[A-Z]/) u[f]++; if (/STG/) s[f]++}
     END{for (k in n) printf "SASS %-36s instr %5d QGMMA %2d R2UR %3d uniform-ops %4d STG %3d\n", k, n[k], q[k], r[k], u[k], s[k]}' /tmp/sass.txt | sort | tee -a $OUT/call.log

# DeepGEMM build in the background (session-3 recipe)
mkdir -p /tmp/dg && tar -xJf $D0/deepgemm-src.tar.xz -C /tmp/dg || stamp "unpack failed"
D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=12 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL $(left 110) python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BUILD=$!

cd $G
NEW1=grouped_gemm1_swiglu_fp8_m128us,grouped_gemm1_swiglu_fp8_m128u,grouped_gemm1_swiglu_fp8_u
NEW2=grouped_gemm2_fp8_u,grouped_gemm2_fp8_m128u
timeout -s KILL $(left 100) python3 gemm_bench.py check --module grouped_gemm.fatbin --out /tmp/logs \
  --kernels $NEW1,$NEW2,grouped_gemm1_swiglu_fp8_m128,grouped_gemm2_fp8 > $OUT/check.log 2>&1 &
CHECK=$!
wait $UNPACK
export PATH=/tmp/rt/jre/bin:$PATH
stamp "gpu tests (production GEMM1 _m128us, GEMM2 _u)"
(cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 120) bash scripts/gpu-test.sh > /tmp/logs/test.log 2>&1)
stamp "gpu tests rc $?"
grep -aE "✘|tests (successful|failed)" /tmp/logs/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | tee -a $OUT/call.log
wait $CHECK
grep -E '"ok": false|CHECK' $OUT/check.log | cut -c1-300 | tee -a $OUT/call.log
echo "checks ok: $(grep -c '"ok": true' $OUT/check.log)" | tee -a $OUT/call.log
wait $BUILD
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1)
stamp "DeepGEMM build: ${SO:-FAILED}"
OURS="grouped_gemm1_swiglu_fp8_m128us,grouped_gemm1_swiglu_fp8_m128,grouped_gemm1_swiglu_fp8,grouped_gemm1_swiglu_fp8_m128u,grouped_gemm1_swiglu_fp8_u;grouped_gemm2_fp8_u,grouped_gemm2_fp8,grouped_gemm2_fp8_m128,grouped_gemm2_fp8_m128u"
if [ -n "$SO" ]; then
  export DG_JIT_CACHE_DIR=/tmp/dgcache
  for i in 0 1 2 3 4 5 6; do
    timeout -s KILL $(left 40) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 &
  done
  wait
  stamp "JIT warm done"
  timeout -s KILL $(left 90) python3 deepgemm_side_by_side.py --dg-path $D --module grouped_gemm.fatbin --out $OUT --runs 20 --ours "$OURS" > /tmp/logs/dg_main.log 2>&1
else
  timeout -s KILL $(left 70) python3 deepgemm_side_by_side.py --no-dg --module grouped_gemm.fatbin --out $OUT --runs 20 --ours "$OURS" > /tmp/logs/dg_main.log 2>&1
fi
stamp "side by side rc $?"
timeout -s KILL $(left 60) python3 gemm_bench.py layer --module grouped_gemm.fatbin --fp8-only --skip noskip,pf,pfs,m128p,m128s,m128n128,lookahead --out /tmp/logs > /tmp/logs/layer.log 2>&1
stamp "layer shapes rc $?"
mb() {  # $1 label, $2 class overlay dir or "", $3 "peer"
  local extra=()
  [ "$3" = peer ] && extra=(--peer "python3 /tmp/w/scripts/bench/torch_moe_layer.py")
  echo "### production $1" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 70) java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    "${extra[@]}" --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile >> /tmp/logs/moe.log 2>&1)
  stamp "moe bench $1 rc $?"
}
mb "v5 (GEMM1 _m128us, GEMM2 _u)" "" peer
mb "session 3 (GEMM1 _m128, GEMM2 v3.3; overlay)" "$G/alt-s3" ""
mb "v5 again" "" ""
tar -cJf $OUT/logs.tar.xz -C /tmp/logs .
cp /tmp/logs/dg_main.log /tmp/logs/layer.log /tmp/logs/moe.log $OUT/ 2>/dev/null
stamp end
grep -E "^###|^deepseek-v3|stages" /tmp/logs/moe.log | cut -c1-260
grep -A12 "^shape (TFLOPS" /tmp/logs/layer.log | cut -c1-200
sed -n '/RESULT shape 6/,$p' /tmp/logs/dg_main.log | grep -v RESULT | cut -c1-330
