#!/usr/bin/env bash
# Session 7, helper mcast7, device call 2: why the pair kernel (_m128usu2dc) is not faster (call 1: -1..-2.5 %).
# - check + bitwise (vs _m128usu2d) of the diagnostics _m128usu2dcn (pairs, no multicast) and _m128usu2dcl (lane release);
# - interleaved timing (no DeepGEMM/torch in the rotation) of _m128usu2d, _m128usu2dc, _m128usu2dcn, _m128usu2dcl,
#   static _m128usu2 on the 6 gate+up issue shapes, two processes;
# - ncu (clocks free, one launch each) of d / dc / dcn on 32 x 2048 and Mixtral: time, clock, tensor pipe, L2 bytes,
#   L2 read sectors, DRAM bytes, warp instructions;
# - gemm_bench.py layer (gate+up 4096 / 16384 tokens) with d / dc / dcn, if time is left.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-240}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/logs; cd $G
nvidia-smi --query-gpu=name,driver_version,temperature.gpu,clocks.sm,power.draw --format=csv,noheader > /tmp/logs/env.txt 2>&1
stamp start
P=grouped_gemm1_swiglu_fp8_
timeout -s KILL $(left 60) python3 gemm_bench.py check --module moe_kernels.fatbin --kernels ${P}m128usu2dcn,${P}m128usu2dcl --out /tmp/logs > $OUT/check.log 2>&1
CRC=$?; stamp "check rc $CRC: $(grep -h '^CHECK' $OUT/check.log)"
[ $CRC -eq 137 ] && { stamp "check hung: stop"; exit 1; }
timeout -s KILL $(left 60) python3 mcast7-bitwise.py --module moe_kernels.fatbin --kernels ${P}m128usu2dc,${P}m128usu2dcn,${P}m128usu2dcl > $OUT/bitwise.log 2>&1
BRC=$?; stamp "bitwise rc $BRC: $(grep -h '^BITWISE' $OUT/bitwise.log)"
[ $BRC -eq 137 ] && { stamp "bitwise hung: stop"; exit 1; }
OURS="${P}m128usu2d,${P}m128usu2dc,${P}m128usu2dcn,${P}m128usu2dcl,${P}m128usu2;grouped_gemm2_fp8_u"
for rep in 1 2; do
  timeout -s KILL $(left 45) python3 deepgemm_side_by_side.py --no-dg --no-torch --shapes 0,1,2,4,5,6 --module moe_kernels.fatbin \
    --out $OUT --runs 30 --ours "$OURS" --jsonl timing.jsonl > /tmp/logs/timing_$rep.log 2>&1
  stamp "timing $rep rc $?"
done
M=gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_bytes.sum,lts__t_sectors_op_read.sum,dram__bytes_read.sum,smsp__inst_executed.sum
timeout -s KILL $(left 70) ncu --clock-control none -k "regex:grouped_gemm1" --metrics $M --csv \
  python3 deepgemm_side_by_side.py --profile --no-dg --shapes 2,6 --module moe_kernels.fatbin --kernels ${P}m128usu2d,${P}m128usu2dc,${P}m128usu2dcn \
  > $OUT/ncu.csv 2> /tmp/logs/ncu.err
stamp "ncu rc $?"
L=$(( DEADLINE - SECONDS - 10 ))
if [ $L -gt 35 ]; then
  SKIPS="skip,noskip,lookahead,baseline,pf,pfs,m128,m128p,m128s,m128n128,u,m128u,m128us,m128usp,m128usu2,m128usu4,m128uu2,m128usu2h,ud,d,m128usu2g,m128usu2g1,m128usu2gd,g,m128usu2dcl"
  timeout -s KILL $L python3 gemm_bench.py layer --module moe_kernels.fatbin --fp8-only --shapes 0,2 --runs 20 --skip "$SKIPS" --out /tmp/logs > /tmp/logs/layer.log 2>&1
  stamp "layer rc $?"
fi
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> /tmp/logs/env.txt 2>&1
cat /tmp/logs/timing_*.log > $OUT/timing.log 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
echo "==== check"; grep -h '"kernel"' $OUT/check.log | cut -c1-200
echo "==== bitwise"; grep -h 'BITWISE\|false' $OUT/bitwise.log | cut -c1-200
echo "==== ncu"; grep -E '^"[0-9]' $OUT/ncu.csv | awk -F'","' '{print $5" | "$(NF-2)" | "$NF}' | sed 's/"//g' | sed 's/(const.*) |/ |/' | cut -c1-140
echo "==== layer"; python3 -c "
import json
for r in json.load(open('/tmp/logs/gemm_layer.json'))['results']:
    print(r['shape'][:60], {k.split()[-1]: v.get('ms') for k, v in r.items() if isinstance(v, dict)})" 2>&1 | tail -3
echo "==== timing"; grep -h "DG " /tmp/logs/timing_*.log | cut -c1-250
