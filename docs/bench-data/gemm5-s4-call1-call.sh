#!/usr/bin/env bash
# Session-4 device call 1 (helper gemm5): MEASURE WHY before changing anything.
#  - ncu (clocks free, caches flushed) of our production kernels (and the other tile) on 32x512, down 32x512, Qwen3,
#    Mixtral while DeepGEMM builds; then DeepGEMM's kernel on the same shapes / operands (same script, own process);
#  - SASS of our fatbin and of DeepGEMM's JIT cubins (+ its generated kernel sources = template args, its configs).
# Run from the repo root: bash .gpuwork-gemm5/call1.sh  (carry .gpuwork-gemm5 and .gpuwork-dg). <= 8 files in $OUT.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
D0=$G/../.gpuwork-dg
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-245}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/sass
stamp start
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv,noheader
  nvcc --version | tail -1; ncu --version | tail -1; g++ --version | head -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)

# our SASS (production + other tile), whole functions
cuobjdump --dump-sass $G/grouped_gemm.fatbin > /tmp/sass/ours_all.sass 2>&1
for f in grouped_gemm1_swiglu_fp8_m128 grouped_gemm1_swiglu_fp8 grouped_gemm2_fp8 grouped_gemm2_fp8_m128; do
  awk -v f="$f" '/Function :/{p=($3==f)} p' /tmp/sass/ours_all.sass > /tmp/sass/ours_$f.sass
  echo "SASS $f: $(wc -l < /tmp/sass/ours_$f.sass) lines, QGMMA $(grep -c QGMMA /tmp/sass/ours_$f.sass), WARPGROUP.DEPBAR $(grep -c 'WARPGROUP.DEPBAR' /tmp/sass/ours_$f.sass), WARPGROUP.ARRIVE $(grep -c 'WARPGROUP.ARRIVE' /tmp/sass/ours_$f.sass), FFMA $(grep -c FFMA /tmp/sass/ours_$f.sass), STG $(grep -c 'STG' /tmp/sass/ours_$f.sass), LDL/STL $(grep -cE 'LDL|STL' /tmp/sass/ours_$f.sass)" | tee -a $OUT/call.log
done
rm /tmp/sass/ours_all.sass

# DeepGEMM: unpack + build in the background (session-3 recipe, .gpuwork-dg/call.sh)
mkdir -p /tmp/dg && tar -xJf $D0/deepgemm-src.tar.xz -C /tmp/dg || stamp "unpack failed"
D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=16 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL $(left 110) python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BUILD=$!
stamp "DeepGEMM build started"

NCU_SECTIONS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section SourceCounters --section InstructionStats --section LaunchStats"
OURK=grouped_gemm1_swiglu_fp8_m128,grouped_gemm1_swiglu_fp8,grouped_gemm2_fp8,grouped_gemm2_fp8_m128
cd $G
timeout -s KILL $(left 120) ncu --clock-control none --cache-control all --kernel-name regex:'grouped_gemm' $NCU_SECTIONS -o /tmp/prof_ours -f \
  python3 deepgemm_side_by_side.py --profile --no-dg --module grouped_gemm.fatbin --shapes 1,3,5,6 --kernels $OURK > /tmp/logs/ncu_ours_run.log 2>&1
stamp "ncu ours rc $?"
wait $BUILD
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1)
stamp "DeepGEMM build: ${SO:-FAILED}"
if [ -n "$SO" ]; then
  export DG_JIT_CACHE_DIR=/tmp/dgcache DG_PRINT_CONFIGS=1
  for i in 1 3 5 6; do
    timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes $i --dg-path $D >> /tmp/logs/dg_warm.log 2>&1 &
  done
  wait
  stamp "JIT warm done"
  timeout -s KILL $(left 90) ncu --clock-control none --cache-control all --kernel-name regex:'sm90_fp8_gemm' $NCU_SECTIONS -o /tmp/prof_dg -f \
    python3 deepgemm_side_by_side.py --profile --dg-path $D --shapes 1,3,5,6 > /tmp/logs/ncu_dg_run.log 2>&1
  stamp "ncu DeepGEMM rc $?"
  for c in $(find /tmp/dgcache -name '*.cubin' 2>/dev/null); do
    n=$(basename $(dirname $c)); cuobjdump --dump-sass $c > /tmp/sass/dg_$n.sass 2>&1
    echo "DG SASS $n: $(grep -m1 'Function' /tmp/sass/dg_$n.sass | cut -c1-200) QGMMA $(grep -c QGMMA /tmp/sass/dg_$n.sass) DEPBAR $(grep -c 'WARPGROUP.DEPBAR' /tmp/sass/dg_$n.sass) FFMA $(grep -c FFMA /tmp/sass/dg_$n.sass)" | tee -a $OUT/call.log
  done
  for k in $(find /tmp/dgcache -name '*.cu' 2>/dev/null); do cp $k /tmp/sass/dgsrc_$(basename $(dirname $k)).cu; done
fi
# exports
for r in ours dg; do
  [ -f /tmp/prof_$r.ncu-rep ] || continue
  ncu -i /tmp/prof_$r.ncu-rep --page details > /tmp/logs/ncu_${r}_details.txt 2>&1
  ncu -i /tmp/prof_$r.ncu-rep --page raw --csv > /tmp/logs/ncu_${r}_raw.csv 2>&1
  timeout -s KILL $(left 30) ncu -i /tmp/prof_$r.ncu-rep --page source --csv --print-source sass > /tmp/logs/ncu_${r}_source.csv 2>&1
done
cat /tmp/logs/ncu_ours_details.txt /tmp/logs/ncu_dg_details.txt > $OUT/ncu_details.txt 2>/dev/null
tar -cJf $OUT/ncu_raw_source.tar.xz -C /tmp/logs $(cd /tmp/logs && ls ncu_*_raw.csv ncu_*_source.csv 2>/dev/null)
tar -cJf $OUT/sass.tar.xz -C /tmp/sass .
tar -cJf $OUT/logs.tar.xz -C /tmp/logs $(cd /tmp/logs && ls *.log)
grep -E "DeepGEMM|config|Config|block" /tmp/logs/dg_warm.log | cut -c1-400 | head -20
stamp end
# summary: per kernel, duration / SM clock / key utilizations
grep -E "^  [a-z_0-9]+.*\(|Duration|SM Frequency|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|Issue Slots Busy|Eligible Warps|No Eligible|Warp Cycles Per Issued|L2 Hit Rate|Executed Ipc A" $OUT/ncu_details.txt | sed 's/  */ /g' | cut -c1-120
