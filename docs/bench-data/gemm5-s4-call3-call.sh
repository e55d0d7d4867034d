#!/usr/bin/env bash
# Session-4 device call 3 (helper gemm5): which pair of v5 kernels in the DeepSeek-V3 FP8 layer, and two more GEMM1
# experiments. (1) gemm_bench check of _m128usp / _m128usu2; (2) issue shapes, ours interleaved (no DeepGEMM: call 2
# measured it); (3) moe bench DeepSeek-V3 FP8 4096/16384, one JVM per production pair (class overlays), order
# P A B C S3 C B A P: P = GEMM1 _m128us + GEMM2 _u (default), A = _u + _u, B = _m128us + _m128u, C = _u + _m128u,
# S3 = session 3 (_m128 + v3.3); (4) the pair with the lowest mean of (4096 ms + 16384 ms) over its two runs is run
# through the GPU tests when it is not P (its overlay copied over the classes); (5) ncu of the v5 production kernels.
# Run from the repo root: bash .gpuwork-gemm5/call3.sh (carry .gpuwork-gemm5 .gpuwork-gpu). <= 8 files in $OUT.
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
R=$G/../.gpuwork-gpu
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
DEADLINE=${DEADLINE:-200}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/w /tmp/logs
stamp start
(tar -xJf $R/jre.tar.xz -C /tmp/rt & for f in $R/deps-*.tar.xz; do tar -xJf $f -C /tmp/rt; done; tar -xJf $G/classes.tar.xz -C /tmp/w; wait) &
UNPACK=$!
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv,noheader > $OUT/env.txt 2>&1
cd $G
timeout -s KILL $(left 40) python3 gemm_bench.py check --module grouped_gemm.fatbin --out /tmp/logs \
  --kernels grouped_gemm1_swiglu_fp8_m128usp,grouped_gemm1_swiglu_fp8_m128usu2 > /tmp/logs/check.log 2>&1
echo "checks ok: $(grep -c '"ok": true' /tmp/logs/check.log) of 6; $(grep CHECK /tmp/logs/check.log)" | tee -a $OUT/call.log
OURS="grouped_gemm1_swiglu_fp8_m128us,grouped_gemm1_swiglu_fp8_m128usp,grouped_gemm1_swiglu_fp8_m128usu2,grouped_gemm1_swiglu_fp8_u;grouped_gemm2_fp8_u,grouped_gemm2_fp8_m128u"
timeout -s KILL $(left 45) python3 deepgemm_side_by_side.py --no-dg --module grouped_gemm.fatbin --out /tmp/logs --runs 20 --ours "$OURS" > /tmp/logs/issue.log 2>&1
stamp "issue shapes rc $?"
wait $UNPACK
export PATH=/tmp/rt/jre/bin:$PATH
mb() {  # $1 label, $2 overlay dir or ""
  echo "### production $1" >> /tmp/logs/moe.log
  (cd /tmp/w && timeout -s KILL $(left 30) java -Xmx48g -cp "${2:+$2:}/tmp/w/gpu-kernels/target/classes:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench \
    --shapes deepseek-v3 --precision fp8 --tokens 4096,16384 --profile >> /tmp/logs/moe.log 2>&1)
}
for c in P A B C S3 C B A P; do
  case $c in P) d="";; A) d=$G/alt-A;; B) d=$G/alt-B;; C) d=$G/alt-C;; S3) d=$G/alt-s3;; esac
  mb "$c" "$d"
done
stamp "moe bench done"
BEST=$(python3 - /tmp/logs/moe.log <<'PY'
import re,sys,collections
runs=collections.defaultdict(list);cur=None;ms={}
for line in open(sys.argv[1],errors='replace'):
    m=re.match(r'^### production (\S+)',line)
    if m:
        if cur and len(ms)==2: runs[cur].append(ms['4096']+ms['16384'])
        cur=m.group(1); ms={}; continue
    m=re.match(r'^deepseek-v3\s+fp8\s+(\d+)\s+([\d.]+)',line)
    if m: ms[m.group(1)]=float(m.group(2))
if cur and len(ms)==2: runs[cur].append(ms['4096']+ms['16384'])
mean={k:sum(v)/len(v) for k,v in runs.items() if len(v)==2 and k!='S3'}
for k,v in sorted(runs.items()): print(k, ' '.join(f'{x:.3f}' for x in v), file=sys.stderr)
print(min(mean,key=mean.get) if mean else 'P')
PY
)
stamp "lowest mean (4096 + 16384 ms): pair $BEST"
if [ "$BEST" != "P" ] && [ -n "$BEST" ]; then
  cp -r $G/alt-$BEST/dev /tmp/w/gpu-kernels/target/classes/
  stamp "gpu tests with pair $BEST"
  (cd /tmp/w && MOE_RUNTIME=/tmp/rt timeout -s KILL $(left 60) bash scripts/gpu-test.sh > /tmp/logs/test.log 2>&1)
  stamp "gpu tests rc $?"
  grep -aE "✘|tests (successful|failed)" /tmp/logs/test.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | tee -a $OUT/call.log
fi
NCU_SECTIONS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section SourceCounters --section InstructionStats"
timeout -s KILL $(left 45) ncu --clock-control none --cache-control all --kernel-name regex:'grouped_gemm' $NCU_SECTIONS -o /tmp/prof_v5 -f \
  python3 deepgemm_side_by_side.py --profile --no-dg --module grouped_gemm.fatbin --shapes 1,3,5,6 \
  --kernels grouped_gemm1_swiglu_fp8_m128us,grouped_gemm2_fp8_u,grouped_gemm2_fp8_m128u > /tmp/logs/ncu_run.log 2>&1
stamp "ncu rc $?"
ncu -i /tmp/prof_v5.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
ncu -i /tmp/prof_v5.ncu-rep --page raw --csv > /tmp/logs/ncu_raw.csv 2>&1
timeout -s KILL $(left 20) ncu -i /tmp/prof_v5.ncu-rep --page source --csv --print-source sass > /tmp/logs/ncu_source.csv 2>&1
tar -cJf $OUT/logs.tar.xz -C /tmp/logs .
cp /tmp/logs/moe.log /tmp/logs/issue.log $OUT/
stamp end
grep -E "^###|^deepseek-v3|stages" /tmp/logs/moe.log | cut -c1-250
sed -n '/^DeepSeek-V3 EP8 gate+up, 32 x 128/,$p' /tmp/logs/issue.log | cut -c1-300
grep -E "^  [a-z_0-9]+ \(|SM Frequency|Duration" $OUT/ncu_details.txt | sed 's/  */ /g' | cut -c1-90
