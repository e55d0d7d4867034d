#!/usr/bin/env bash
# Session-17 lead, call h: GEMM1's static unit order for at most 16 groups of mostly full blocks (staticGemm1 with the
# group bound after call g) for FP8 and BF16 (the static BF16 GEMM1 now with the next-unit lookahead): GPU suite on the new
# classes; layers in JVMs alternating old (4eb62b5) / new classes (Mixtral BF16 and FP8, DeepSeek-V3 and Qwen3 FP8 at
# 32768 tokens); the BF16 GEMM1 tiles beside torch (one process); Mixtral BF16 4096 with the torch peer (new classes).
set -o pipefail
G=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEADLINE=${DEADLINE:-560}
left() { local l=$(( DEADLINE - SECONDS )); [ $l -gt $1 ] && echo $1 || echo $(( l > 3 ? l : 3 )); }
stamp() { echo "[$(date +%T) t=${SECONDS}s] $*" | tee -a $OUT/call.log; }
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/wo /tmp/logs/* && mkdir -p /tmp/w /tmp/wo
R=$G/rt
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $R/jre.tar.xz -C /tmp/rt & tar -xJf $R/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $R/classes.tar.xz -C /tmp/w; tar -xJf $R/old-classes.tar.xz -C /tmp/wo
JAVA=/tmp/rt/jre/bin/java
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu,clocks.sm --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda)"; } > $OUT/env.txt 2>&1
stamp unpacked
NVCC=$(readlink -f $(which nvcc)); export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $NVCC))}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
CP=$(python3 -c "import nvidia,glob,os;print(':'.join(sorted({d for p in nvidia.__path__ for d in glob.glob(os.path.join(p,'*','include'))})))" 2>/dev/null)
[ -n "$CP" ] && export CPATH=${CPATH:+$CPATH:}$CP
LIB="$(ls /tmp/rt/lib/*.jar | tr '\n' ':')"
(cd /tmp/w && timeout -s KILL $(left 200) $JAVA -Xmx24g -cp "gpu-kernels/target/classes:gpu-kernels/target/test-classes:$LIB" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --scan-class-path gpu-kernels/target/test-classes --include-tag gpu > /tmp/logs/test.log 2>&1)
stamp "GPU suite rc $? $(grep -aE 'tests (successful|failed|skipped)' /tmp/logs/test.log | tr -s ' ' | tr '\n' ' ')"
bench() {  # bench VERSION TAG ARGS...
  local v=$1 tag=$2; shift 2; local cp=/tmp/w/gpu-kernels/target/classes; [ $v = old ] && cp=/tmp/wo/gpu-kernels/target/classes
  (cd /tmp/w && timeout -s KILL $(left 60) $JAVA -Xmx64g -cp "$cp:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench "$@" > /tmp/logs/$tag-$v.log 2>&1)
  stamp "$tag $v rc $?"
}
for r in 1 2; do for v in old new; do
  bench $v mb-r$r --shapes mixtral-8x7b --precision native,fp8 --tokens 4096,32768 --runs 20
  bench $v dq-r$r --shapes deepseek-v3,qwen3-30b-a3b --precision fp8 --tokens 32768 --runs 20
done; done
bench new mixbf-peer --shapes mixtral-8x7b --precision native --tokens 4096,32768 --runs 20 --peer "python3 $G/../scripts/bench/torch_moe_layer.py"
B=$G/../scripts/bench; VAR=$G/var7/moe_kernels.fatbin
cd $B
timeout -s KILL $(left 60) python3 gemm_bench.py bench --bf16-only --module $VAR --skip grouped_gemm1_swiglu_bf16_u,grouped_gemm1_swiglu_bf16_dc --shapes 6,2,5,1 --runs 20 --out /tmp/logs > /tmp/logs/bench_bf16.log 2>&1
stamp "bf16 bench rc $?"
nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader >> $OUT/env.txt 2>&1
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/*.log
cp /tmp/logs/bench_bf16.log $OUT/ 2>/dev/null
cat /tmp/logs/mb-*.log /tmp/logs/dq-*.log /tmp/logs/mixbf-*.log > $OUT/moe.log 2>/dev/null
(cd /tmp/logs && tar -cJf $OUT/logs.tar.xz .)
grep -aE "✘|tests (successful|failed|found)" /tmp/logs/test.log | cut -c1-220
echo "==== moe"; for f in /tmp/logs/mb-*.log /tmp/logs/dq-*.log /tmp/logs/mixbf-*.log; do echo "== $f"; grep -hE "^(deepseek-v3|mixtral-8x7b|qwen3-30b-a3b) +(fp8|native)" $f | cut -c1-150; done
echo "==== bf16"; grep -v "^$" /tmp/logs/bench_bf16.log | python3 -c "
import sys,json
for l in sys.stdin:
    try: r=json.loads(l)
    except Exception: continue
    print(r.get('shape'))
    for k,v in r.items():
        if isinstance(v,dict): print('   ',k, {a:b for a,b in v.items() if a in ('tflops','ms','error')})
"
