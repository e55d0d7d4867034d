#!/usr/bin/env bash
# Session-17 lead, call f: the static-order FP8 GEMM1 in the production GEMM2's form (_m128usu2l: carried descriptors +
# next-unit lookahead) beside production (dynamic _m128usu2d) and the static _m128usu2: check, DeepGEMM side by side
# (3 processes), layer-like rows; then layers with sparkmoe.gpu.gemmDynamicUnits=gemm1 (default) / off in alternating JVMs.
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
B=$G/../scripts/bench; VAR=$G/var5/moe_kernels.fatbin
cd $B
timeout -s KILL $(left 60) python3 gemm_bench.py check --module $VAR --kernels grouped_gemm1_swiglu_fp8_m128usu2l --out /tmp/logs > $OUT/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' $OUT/check.log)"
SKIPS=$(python3 -c "import gemm_bench as g; print(','.join(t for t in ('skip','noskip','lookahead','baseline')+g.V4 if t not in ('m128usu2d','m128usu2','m128usu2l')))" 2>/dev/null)
timeout -s KILL $(left 90) python3 gemm_bench.py layer --module $VAR --shapes 0,2 --runs 20 --fp8-only --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
stamp "layer rc $?"
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
  for rep in 1 2 3; do
    timeout -s KILL $(left 100) python3 deepgemm_side_by_side.py $DGARG --module $VAR --out $OUT --runs 30 --no-torch \
      --ours "grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_m128usu2,grouped_gemm1_swiglu_fp8_m128usu2l;grouped_gemm2_fp8_m128u_ybf16" \
      --jsonl dg_side_by_side.jsonl > /tmp/logs/dg_main_$rep.log 2>&1
    stamp "side by side $rep rc $?"
  done
fi
R=$G/rt
mkdir -p /tmp/rt /tmp/w && rm -rf /tmp/w/*
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w
bench() {  # bench DYN TAG ARGS...
  local dyn=$1 tag=$2; shift 2
  (cd /tmp/w && timeout -s KILL $(left 60) /tmp/rt/jre/bin/java -Xmx64g -Dsparkmoe.gpu.gemmDynamicUnits=$dyn -cp "gpu-kernels/target/classes:/tmp/rt/lib/*" \
     dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$tag-$dyn.log 2>&1)
  stamp "$tag $dyn rc $?"
}
for r in 1 2; do for dyn in gemm1 off; do
  bench $dyn mq-r$r --shapes mixtral-8x7b,qwen3-30b-a3b --precision fp8 --tokens 4096,32768 --runs 20
done; done
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> $OUT/env.txt 2>&1
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
cat /tmp/logs/dg_main_*.log > $OUT/side_by_side.log 2>/dev/null; cp /tmp/logs/layer.log $OUT/ 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
for f in /tmp/logs/mq-*.log; do echo "== $f"; grep -hE "^(deepseek-v3|mixtral-8x7b|qwen3-30b-a3b) +(fp8|native)" $f | cut -c1-160; done
echo "==== layer"; grep -v "^$" /tmp/logs/layer.log | python3 -c "
import sys,json
for l in sys.stdin:
    try: r=json.loads(l)
    except Exception: continue
    print(r.get('shape'))
    for k,v in r.items():
        if isinstance(v,dict): print('   ',k, {a:b for a,b in v.items() if a in ('tflops','ms','error')})
"
grep -h '"kernel"' $OUT/check.log | cut -c1-200
echo "==== side by side"; grep -h "RESULT\|^DeepSeek\|^Qwen\|^Mixtral" /tmp/logs/dg_main_*.log | cut -c1-330 | head -60
