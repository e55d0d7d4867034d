// Benchmark support: a kernel that keeps a stream busy for a given time, so that work queued after it (an event, then a
// layer's graph) is already submitted when the GPU reaches it - the device time of the layer alone, without the host's
// submission latency of an isolated call (moe bench's dev_ms; LayerProfiler).
#include "moe_common.cuh"

// One thread spins on the global nanosecond timer until `ns` have passed since it started.
extern "C" __global__ void moe_timing_wait_ns(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}
