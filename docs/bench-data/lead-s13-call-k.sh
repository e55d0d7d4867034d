#!/usr/bin/env bash
# Session-13 lead, call K: where certwg's logits kernel stalls (final head): ncu warp states, source counters (stall
# reasons per instruction), shared-memory wavefronts and pipe utilization, one launch at 4096 DeepSeek-V3 tokens.
set -o pipefail
P=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/rt /tmp/logs && rm -rf /tmp/w /tmp/logs/* && mkdir -p /tmp/w
[ -x /tmp/rt/jre/bin/java ] || (tar -xJf $P/jre.tar.xz -C /tmp/rt & tar -xJf $P/deps-1.tar.xz -C /tmp/rt; wait)
tar -xJf $P/classes.tar.xz -C /tmp/w
export PATH=/tmp/rt/jre/bin:$PATH
NEW=/tmp/w/gpu-kernels/target/classes
(cd /tmp/w && timeout -s KILL 150 ncu --kernel-name regex:bf16x3_wg --launch-skip 2 --launch-count 1 --import-source no \
  --section WarpStateStats --section SourceCounters --section MemoryWorkloadAnalysis_Tables --section ComputeWorkloadAnalysis --section SpeedOfLight \
  --metrics smsp__pcsamp_warps_issue_stalled_barrier,smsp__pcsamp_warps_issue_stalled_long_scoreboard,smsp__pcsamp_warps_issue_stalled_short_scoreboard,smsp__pcsamp_warps_issue_stalled_wait,smsp__pcsamp_warps_issue_stalled_math_pipe_throttle,smsp__pcsamp_warps_issue_stalled_mio_throttle,smsp__pcsamp_warps_issue_stalled_lg_throttle,smsp__pcsamp_warps_issue_stalled_membar,smsp__pcsamp_warps_issue_stalled_sleeping,smsp__pcsamp_warps_issue_stalled_selected,smsp__pcsamp_warps_issue_stalled_not_selected,smsp__pcsamp_warps_issue_stalled_dispatch_stall,smsp__pcsamp_warps_issue_stalled_misc,smsp__pcsamp_warps_issue_stalled_tex_throttle,smsp__pcsamp_warps_issue_stalled_drain,smsp__pcsamp_warps_issue_stalled_imc_miss,smsp__pcsamp_warps_issue_stalled_branch_resolving,smsp__pcsamp_warps_issue_stalled_no_instructions,smsp__pcsamp_sample_count,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fp64.avg.pct_of_peak_sustained_active,sm__cycles_elapsed.avg \
  java -Xmx48g -cp "$NEW:/tmp/rt/lib/*" dev.sparkmoe.cli.MoeCli bench --shapes deepseek-v3 --precision fp8 --tokens 4096 --runs 2 --warmup 1 > /tmp/logs/ncu.log 2>&1)
echo "ncu rc $?" | tee $OUT/call.log
sed -i 's/\x1b\[[0-9;]*m//g' /tmp/logs/ncu.log
cp /tmp/logs/ncu.log $OUT/
sed -n '/moe_router_logits_bf16x3_wg/,$p' /tmp/logs/ncu.log | grep -vE "^ *-+ *$|^ *$|^==PROF" | cut -c1-130 | head -120
