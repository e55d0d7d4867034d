#!/usr/bin/env bash
# (its kEarlyHalf / kStagger variants come from docs/bench-data/lead-s17-early-half-stagger.patch applied to 0c0ac67)
# Session-17 lead, call b: Tile kEarlyHalf with the unit's last K block peeled (_m128usu2de, _m128ue[_ybf16]; call a's
# in-loop form was 6-9 % slower) and the production GEMM1 tile with its second warpgroup two K blocks behind
# (_m128usu2ds, Tile kStagger): check, SASS, layer rows, DeepGEMM side by side (3 processes) beside production.
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
B=$G/../scripts/bench; VAR=$G/var2/moe_kernels.fatbin
cd $B
K="grouped_gemm1_swiglu_fp8_m128usu2de,grouped_gemm1_swiglu_fp8_m128usu2ds,grouped_gemm2_fp8_m128ue,grouped_gemm2_fp8_m128ue_ybf16"
timeout -s KILL $(left 90) python3 gemm_bench.py check --module $VAR --kernels $K --out /tmp/logs > $OUT/check.log 2>&1
CRC=$?; stamp "check rc $CRC: $(grep -h '^CHECK' $OUT/check.log)"
for k in grouped_gemm1_swiglu_fp8_m128usu2d grouped_gemm1_swiglu_fp8_m128usu2de grouped_gemm2_fp8_m128u_ybf16 grouped_gemm2_fp8_m128ue_ybf16 grouped_gemm1_swiglu_fp8_m128usu2ds; do
  cuobjdump -sass -fun $k $VAR > /tmp/logs/sass_$k.txt 2>&1
  stamp "sass $k: $(grep -c 'GMMA' /tmp/logs/sass_$k.txt) xGMMA, $(grep -c 'MUFU' /tmp/logs/sass_$k.txt) MUFU, $(grep -cE 'STL|LDL' /tmp/logs/sass_$k.txt) local, $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' /tmp/logs/sass_$k.txt) instr"
done
SKIPS=$(python3 -c "import gemm_bench as g; print(','.join(('skip','noskip','lookahead','baseline')+g.V4))" 2>/dev/null)
LK="grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2de,grouped_gemm1_swiglu_fp8_m128usu2ds,grouped_gemm2_fp8_m128u_ybf16,grouped_gemm2_fp8_m128ue_ybf16"
timeout -s KILL $(left 120) python3 gemm_bench.py layer --module $VAR --baseline $VAR --baseline-kernels $LK --shapes 0,1,2,3 --runs 20 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
stamp "layer rc $?"
wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
if [ $CRC -ne 137 ]; then
  if [ -n "$SO" ]; then
    for i in 0 1 2 3 4 5 6; do timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 & done
    wait; stamp "JIT warm done"; DGARG="--dg-path $D"
  else
    tail -20 /tmp/logs/dg_build.log; DGARG="--no-dg"
  fi
  for rep in 1 2 3; do
    timeout -s KILL $(left 90) python3 deepgemm_side_by_side.py $DGARG --module $VAR --out $OUT --runs 30 --no-torch \
      --ours "grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2de,grouped_gemm1_swiglu_fp8_m128usu2ds;grouped_gemm2_fp8_m128u_ybf16,grouped_gemm2_fp8_m128ue_ybf16" \
      --jsonl dg_side_by_side.jsonl > /tmp/logs/dg_main_$rep.log 2>&1
    stamp "side by side $rep rc $?"
  done
fi
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> $OUT/env.txt 2>&1
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
cat /tmp/logs/dg_main_*.log > $OUT/side_by_side.log 2>/dev/null; cp /tmp/logs/layer.log $OUT/ 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== check"; grep -h '"kernel"' $OUT/check.log | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l); print(r['kernel'][-34:], 'ok' if r.get('ok') else 'FAIL', {k:r.get(k) for k in ('err','bitwise_repeat','no_skip','large','error') if k in r})"
echo "==== bf16 bench / layer"; cat /tmp/logs/layer.log | grep -v "^$" | python3 -c "
import sys,json
for l in sys.stdin:
    try: r=json.loads(l)
    except Exception: print(l.strip()[:200]); continue
    print(r.get('shape'))
    for k,v in r.items():
        if isinstance(v,dict): print('   ',k, {a:b for a,b in v.items() if a in ('tflops','ms','error')})
" 2>&1 | head -60
echo "==== side by side"; grep -h "RESULT\|^DeepSeek\|^Qwen\|^Mixtral" /tmp/logs/dg_main_*.log | cut -c1-330 | head -60
