#!/usr/bin/env bash
# Session-18 lead, call a: the ceilings behind issue 3's two missed bars, measured on one H200 in one call.
# (1) Mixtral BF16 layer (moe bench, torch BF16 peer) at 4096 / 32768 tokens, then its stage profile;
# (2) bf16_ceiling.py: Mixtral's expert GEMMs (uniform top-2 rows) - ours, torch._grouped_mm, DeepGEMM BF16 grouped,
#     cuBLAS dense - and the zero-glue layer against the peer / 1.5;
# (3) deepgemm_side_by_side.py on the gate+up shapes with the FP8 recipe figures (DeepGEMM's D through the recipe,
#     ours, the bf16-rounded exact product) - the 2e-3 bar's ceiling.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-580}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs /tmp/dg && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
R=$G/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w
JAVA=/tmp/rt/jre/bin/java
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
stamp unpacked
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
D=/tmp/dg/DeepGEMM
if ! ls $D/deep_gemm/_C*.so >/dev/null 2>&1; then
  tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg
  cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
  sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
  (cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=10 DG_USE_LOCAL_VERSION=0 \
     timeout -s KILL 240 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
  BPID=$!
fi
CLS=/tmp/w/gpu-kernels/target/classes; FAT=$CLS/dev/sparkmoe/kernels/moe_kernels.fatbin
(cd /tmp/w && timeout -s KILL $(left 170) $JAVA -Xmx64g -cp "$CLS:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --peer "python3 $G/../scripts/bench/torch_moe_layer.py" --shapes mixtral-8x7b --precision native --tokens 4096,32768 \
  --runs 20 --warmup 5 --json /tmp/logs/mixtral-bf16.json > /tmp/logs/mixtral-bf16.log 2>&1)
stamp "mixtral bf16 table rc $?"
(cd /tmp/w && timeout -s KILL $(left 90) $JAVA -Xmx64g -cp "$CLS:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
  --shapes mixtral-8x7b --precision native --tokens 4096,32768 --runs 20 --profile > /tmp/logs/mixtral-bf16-profile.log 2>&1)
stamp "mixtral bf16 profile rc $?"
PEER=$(python3 -c "
import json; d=json.load(open('/tmp/logs/mixtral-bf16.json'))
print(','.join(f\"{r['tokens']}={r['torch_ms']:.4f}\" for r in d if r.get('torch_ms')))" 2>/dev/null)
stamp "peer ms: $PEER"
[ -n "${BPID:-}" ] && wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
B=$G/../scripts/bench; cd $B
DGARG="--no-dg"; [ -n "$SO" ] && DGARG="--dg-path $D"
if [ -n "$SO" ]; then
  for i in 1 2 5 6; do timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 & done
  wait; stamp "FP8 JIT warm done"
fi
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 200 > /tmp/logs/clocks-ceiling.csv 2>&1 &
SMI=$!
timeout -s KILL $(left 200) python3 bf16_ceiling.py --module $FAT $([ -n "$SO" ] && echo --dg-path $D) --runs 15 \
  --peer-ms "$PEER" --out /tmp/logs > /tmp/logs/bf16_ceiling.log 2>&1
stamp "bf16 ceiling rc $?"
kill $SMI 2>/dev/null
echo "ceiling SM clock MHz (min / median / max), W median: $(awk -F', ' 'NR>1 && $2+0>0 {print $2+0}' /tmp/logs/clocks-ceiling.csv | sort -n | awk '{a[NR]=$1} END{print a[1], a[int(NR/2)+1], a[NR]}') / $(awk -F', ' 'NR>1 && $3+0>0 {print $3+0}' /tmp/logs/clocks-ceiling.csv | sort -n | awk '{a[NR]=$1} END{print a[int(NR/2)+1]}')" | tee -a $OUT/call.log
for rep in 1 2; do
  timeout -s KILL $(left 90) python3 deepgemm_side_by_side.py $DGARG --module $FAT --shapes 1,2,5,6 --runs 20 --sample 256 \
    --out /tmp/logs --jsonl fp8_recipe.jsonl > /tmp/logs/fp8_recipe_$rep.log 2>&1
  stamp "fp8 recipe $rep rc $?"
done
cp /tmp/logs/*.log /tmp/logs/*.json* $OUT/ 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== mixtral bf16"; grep -hE "^mixtral|torch|stage|route|dispatch|gemm|combine" /tmp/logs/mixtral-bf16.log /tmp/logs/mixtral-bf16-profile.log | cut -c1-200 | head -40
echo "==== bf16 ceiling"; sed -n '/^ *T GEMM/,$p' /tmp/logs/bf16_ceiling.log; grep -h "FAILED\|rror" /tmp/logs/bf16_ceiling.log | head -5
echo "==== fp8 recipe"; grep -h "RESULT\|recipe after\|DG [0-9 ]" /tmp/logs/fp8_recipe_*.log | cut -c1-260
