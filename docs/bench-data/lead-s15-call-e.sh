#!/usr/bin/env bash
# Session-15 lead, call e: the 128 x 192 tiles side by side at the instruction level - DeepGEMM's SM90 FP8 GEMM
# (shape 2, 32 x 2048, its JIT cubin's SASS) against _w192 (same tile shape and wgmma group) and production
# _m128usu2d: ncu stall reasons per issued instruction, tensor-pipe activity, instruction counts; plus gemm_bench check
# of session 15's variants after the last refactor (the wide tile's scale split computed in its mainloop).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-540}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs /tmp/dg
cp $G/../scripts/bench/gemm_bench.py $G/../scripts/bench/deepgemm_side_by_side.py $G/
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
GXX=$([ -x /usr/bin/g++ ] && echo /usr/bin/g++ || which g++); GCC=$([ -x /usr/bin/gcc ] && echo /usr/bin/gcc || which gcc)
stamp start
tar -xJf $G/deepgemm-src.tar.xz -C /tmp/dg; D=/tmp/dg/DeepGEMM
cp -r $D/third-party/cutlass/include/cute $D/third-party/cutlass/include/cutlass $D/deep_gemm/include/
sed -i "s/'-O3', '-fPIC'/'-O1', '-g0', '-fPIC'/" $D/setup.py
(cd $D && CC=$GCC CXX=$GXX LDSHARED="$GXX -shared" MAX_JOBS=12 DG_USE_LOCAL_VERSION=0 \
   timeout -s KILL 200 python3 setup.py build_ext --inplace > /tmp/logs/dg_build.log 2>&1) &
BPID=$!
cd $G
timeout -s KILL $(left 90) python3 gemm_bench.py check --module moe_kernels.fatbin --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_w192,grouped_gemm1_swiglu_fp8_m128usu2dw,grouped_gemm1_swiglu_fp8_m128usu2dws,grouped_gemm2_fp8_m128uw_ybf16 > $OUT/check.log 2>&1
stamp "check rc $?: $(grep -h '^CHECK' $OUT/check.log)"
cuobjdump -sass -fun grouped_gemm1_swiglu_fp8_w192 moe_kernels.fatbin > /tmp/logs/sass_w192.txt 2>&1
cuobjdump -sass -fun grouped_gemm1_swiglu_fp8_m128usu2d moe_kernels.fatbin > /tmp/logs/sass_m128usu2d.txt 2>&1
wait $BPID
SO=$(ls $D/deep_gemm/_C*.so 2>/dev/null | head -1); stamp "DeepGEMM built: ${SO:-FAILED}"
export DG_JIT_CACHE_DIR=/tmp/dgcache
timeout -s KILL $(left 60) python3 deepgemm_side_by_side.py --warm-only --shapes 2 --dg-path $D > /tmp/logs/dg_warm.log 2>&1
stamp "JIT warm rc $?"
find /tmp/dgcache -name "*.cubin" | head -5 > /tmp/logs/dg_cubins.txt
for c in $(cat /tmp/logs/dg_cubins.txt); do echo "=== $c"; cuobjdump -sass $c; done > /tmp/logs/sass_deepgemm.txt 2>&1
stamp "DeepGEMM cubins: $(wc -l < /tmp/logs/dg_cubins.txt), SASS lines $(wc -l < /tmp/logs/sass_deepgemm.txt)"
MET="regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum,gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,regex:sm__pipe_tensor_op_gmma_cycles_active\.avg\.pct_of_peak_sustained_active,smsp__warps_eligible.avg.per_cycle_active,smsp__issue_active.avg.pct_of_peak_sustained_active"
timeout -s KILL $(left 200) ncu --clock-control none --kernel-name regex:'grouped_gemm1|sm90_fp8' --metrics "$MET" \
  python3 deepgemm_side_by_side.py --profile --dg-path $D --module moe_kernels.fatbin --shapes 2 \
  --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_w192 > /tmp/logs/ncu.log 2>&1
stamp "ncu rc $?"
cp /tmp/logs/ncu.log $OUT/
(cd /tmp/logs && xz -k sass_w192.txt sass_m128usu2d.txt sass_deepgemm.txt && cp sass_*.xz $OUT/)
grep -h '"kernel"' $OUT/check.log | cut -c1-160
grep -aE "^  [a-z_0-9]+.*\(|stalled|inst_executed|duration|per_second|gmma|eligible|issue_active" /tmp/logs/ncu.log | sed 's/  */ /g' | cut -c1-150 | head -90
# The ncu step above failed on its tensor-pipe metric name (rc 9); it was rerun at once on the same warm machine with
# that metric replaced by the uniform-pipe instruction count (lead-s15-call-e-ncu.log):
#   MET="regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum,gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,smsp__warps_eligible.avg.per_cycle_active,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_uniform.sum"
#   ncu --clock-control none --kernel-name regex:'grouped_gemm1|sm90_fp8' --metrics "$MET" python3 deepgemm_side_by_side.py --profile \
#     --dg-path /tmp/dg/DeepGEMM --module moe_kernels.fatbin --shapes 2 --kernels grouped_gemm1_swiglu_fp8_m128usu2d,grouped_gemm1_swiglu_fp8_w192
