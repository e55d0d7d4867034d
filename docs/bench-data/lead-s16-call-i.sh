#!/usr/bin/env bash
# Session-16 lead, call i: the static 128-row FP8 GEMM2 looking its next unit up during the unit's first wgmma group
# (_m128ul[_ybf16], Tile kLookahead) beside production _m128u_ybf16 and the dynamic _m128ud_ybf16 (call h):
# check, SASS, layer-like down rows at 4096 / 16384 tokens, DeepGEMM side by side (3 processes).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-560}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg
B=$G/../scripts/bench
NEW=$G/new5/moe_kernels.fatbin
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
stamp start
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg; D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=12 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL 200 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BPID=$!
cd $B
K1="grouped_gemm2_fp8_m128ul,grouped_gemm2_fp8_m128ul_ybf16"
timeout -s KILL $(left 120) python3 gemm_bench.py check --module $NEW --kernels $K1 --out /tmp/logs > $OUT/check.log 2>&1
CRC=$?; stamp "check rc $CRC: $(grep -h '^CHECK' $OUT/check.log)"
for f in new5; do for k in grouped_gemm2_fp8_m128ul_ybf16 grouped_gemm2_fp8_m128u_ybf16; do
  cuobjdump -sass -fun $k $G/$f/moe_kernels.fatbin > /tmp/logs/sass_${f}_$k.txt 2>&1
  stamp "sass $f $k: $(grep -c 'GMMA' /tmp/logs/sass_${f}_$k.txt) xGMMA, $(grep -c 'MUFU' /tmp/logs/sass_${f}_$k.txt) MUFU, $(grep -c 'FCHK' /tmp/logs/sass_${f}_$k.txt) FCHK, $(grep -c 'CALL' /tmp/logs/sass_${f}_$k.txt) CALL, $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' /tmp/logs/sass_${f}_$k.txt) instr"
done; done
# layer-like down rows: the static and the dynamic 128-row GEMM2
SKIPS="skip,noskip,lookahead,baseline,pf,pfs,m128,m128p,m128s,m128n128,u,m128u,m128us,m128usp,m128usu2,m128usu4,m128uu2,m128usu2h,ud,m128usu2g,m128usu2g1,m128usu2gd,g,m128usu2dc,m128usu2dcn,m128usu2dcl,u_ybf16,m128usu2dq,m128uq_ybf16,m128usu2dr,m128ur_ybf16,m128u4_ybf16,m128uy_ybf16,m128usu2d3,m128pn,m128usu2dw,m128uw_ybf16,m128usu2dws,w192"
timeout -s KILL $(left 130) python3 gemm_bench.py layer --module $NEW --fp8-only --shapes 1,3 --runs 20 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
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
    timeout -s KILL $(left 100) python3 deepgemm_side_by_side.py $DGARG --module $NEW --out $OUT --runs 30 \
      --ours "grouped_gemm1_swiglu_fp8_m128usu2d;grouped_gemm2_fp8_m128u_ybf16,grouped_gemm2_fp8_m128ul_ybf16,grouped_gemm2_fp8_m128ud_ybf16" --jsonl dg_side_by_side.jsonl > /tmp/logs/dg_main_$rep.log 2>&1
    stamp "side by side $rep rc $?"
  done
fi
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> $OUT/env.txt 2>&1
cat /tmp/logs/dg_main_*.log > $OUT/side_by_side.log 2>/dev/null; cp /tmp/logs/layer.log $OUT/ 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== check"; grep -h '"kernel"' $OUT/check.log | python3 -c "
import sys,json
for l in sys.stdin:
    r=json.loads(l); print(r['kernel'][-28:], 'ok' if r.get('ok') else 'FAIL', {k:r.get(k) for k in ('err','bitwise_repeat','no_skip','large','error') if k in r})"
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
