#!/usr/bin/env bash
# Session-17 lead, call d: our plain grouped FP8 GEMM (the GEMM2 kernels: bf16 output, no SwiGLU / re-quantization -
# DeepGEMM's own work) on the issue's gate+up shapes with all 2I columns, beside DeepGEMM (deepgemm_side_by_side.py
# --plain, 2 processes), and the fused production GEMM1 beside DeepGEMM in a third process (HEAD cdaeafb + --plain).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-575}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/dg && rm -rf /tmp/logs/*
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
stamp unpacked
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg; D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=10 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL 220 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BPID=$!
B=$G/../scripts/bench; VAR=$G/var3/moe_kernels.fatbin
cd $B
wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
if true; then
  if [ -n "$SO" ]; then
    for i in 0 1 2 3 4 5 6; do timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 & done
    wait; stamp "JIT warm done"; DGARG="--dg-path $D"
  else
    tail -20 /tmp/logs/dg_build.log; DGARG="--no-dg"
  fi
  for rep in plain1 fused plain2; do
    if [ $rep = fused ]; then
      OURS="grouped_gemm1_swiglu_fp8_m128usu2d;grouped_gemm2_fp8_m128u_ybf16"; PL=""
    else
      OURS=";grouped_gemm2_fp8_m128u_ybf16,grouped_gemm2_fp8_m128u4_ybf16,grouped_gemm2_fp8_u_ybf16"; PL="--plain"
    fi
    timeout -s KILL $(left 100) python3 deepgemm_side_by_side.py $DGARG --module $VAR --out $OUT --runs 30 --no-torch $PL \
      --ours "$OURS" --jsonl dg_side_by_side.jsonl > /tmp/logs/dg_main_$rep.log 2>&1
    stamp "side by side $rep rc $?"
  done
fi
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> $OUT/env.txt 2>&1
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
cat /tmp/logs/dg_main_*.log > $OUT/side_by_side.log 2>/dev/null; cp /tmp/logs/layer.log $OUT/ 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== side by side"; grep -h "RESULT\|^DeepSeek\|^Qwen\|^Mixtral" /tmp/logs/dg_main_*.log | cut -c1-330 | head -60
