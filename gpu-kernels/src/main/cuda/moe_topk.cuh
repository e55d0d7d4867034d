// Top-k selection of one token by one warp (moe_route_topk in moe_route.cu; the small-batch route kernel in
// moe_decode.cu): the keys and tie rule of the CPU engine's Router - softmax families rank logits, DeepSeek ranks fp32
// sigmoid(l) + bias, groups by the sum of their two best keys, dropped groups never eligible; equal keys -> lower index.
#pragma once
#include "moe_common.cuh"

// The selection order as one unsigned per key: a larger key maps higher, equal keys (+0 and -0 too) map equal, NaN maps
// to 0, below everything (-inf included). With ties going to the lower index this is the CPU Router's order.
__device__ __forceinline__ unsigned moe_key_image(float key) {
  if (isnan(key)) return 0u;
  if (key == 0.0f) return 0x80000000u;
  const unsigned b = __float_as_uint(key);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

constexpr unsigned MOE_NO_CANDIDATE = 0xffffffffu;

// The per-warp scratch of moe_topk_token in a route kernel's dynamic shared memory of WARPS warps per block and E
// experts: keys [WARPS][E] floats, scores [WARPS][E] floats, eligibility [WARPS][E] bytes (more blocks per SM than a
// MOE_MAX_EXPERTS-sized static array).
struct MoeTopkScratch {
  float* key;
  float* score;
  unsigned char* okw;
};

template <int WARPS>
__device__ __forceinline__ MoeTopkScratch moe_topk_scratch(float* smem, int warp, int E) {
  return {smem + warp * E, smem + (WARPS + warp) * E, (unsigned char*)(smem + 2 * WARPS * E) + warp * E};
}

// This lane's best live candidate of n (images and liveness in shared memory; the lane's indices lane, lane + 32, ...
// ascend, so a strict > keeps the lower index of equal images).
__device__ __forceinline__ void moe_lane_best(const unsigned* img, const unsigned char* live, int n, unsigned& best_img,
                                              unsigned& best_idx) {
  best_img = 0u;
  best_idx = MOE_NO_CANDIDATE;
#pragma unroll 4
  for (int i = threadIdx.x & 31; i < n; i += 32) {
    if (live[i] && (best_idx == MOE_NO_CANDIDATE || img[i] > best_img)) { best_img = img[i]; best_idx = (unsigned)i; }
  }
}

// The warp's best of the lanes' candidates: the largest image, then the lowest index (two warp reductions).
__device__ __forceinline__ unsigned moe_warp_best(unsigned best_img, unsigned best_idx) {
  const unsigned m = __reduce_max_sync(0xffffffffu, best_idx != MOE_NO_CANDIDATE ? best_img : 0u);
  return __reduce_min_sync(0xffffffffu, best_img == m ? best_idx : MOE_NO_CANDIDATE);
}

// One warp selects token t's k experts from its logits row (n_out values: E experts, then Qwen2-MoE's shared gate) and
// writes topk_expert/topk_weight [t, 0..k) in selection order (best first) and, when shared_row_weight is given, the
// shared expert's row weight (1, or sigmoid(shared gate logit) when gated). Scratch: key, score (E floats) and okw (E
// bytes) per warp, chosen: 32 entries per warp. Weights in double as the CPU computes them. Each of the k rounds is
// two warp reductions and one lane's rescan of its E / 32 candidates (the chosen expert's lane), so a token takes a
// few hundred cycles instead of k shuffle trees over shared memory.
__device__ __forceinline__ void moe_topk_token(
    const float* __restrict__ row, const float* __restrict__ bias, int t, int* __restrict__ topk_expert,
    float* __restrict__ topk_weight, float* __restrict__ shared_row_weight, int E, int k, int scoring, int n_group,
    int topk_group, int norm_topk, float scaling, int shared_gated, float* key, float* score, unsigned char* okw, int* chosen) {
  const int lane = threadIdx.x & 31;
  unsigned* img = (unsigned*)key;  // the keys' selection images, written over the keys once the group scan has read them
  for (int i = lane; i < E; i += 32) {
    float l = row[i];
    float kv;
    if (scoring == 0) {
      kv = l;  // softmax is increasing: ranking by logits is ranking by probability, free of rounding ties
      score[i] = l;
    } else {
      float s = moe_sigmoid(l);
      score[i] = s;
      kv = bias ? s + bias[i] : s;
    }
    key[i] = kv;
    okw[i] = 1;
  }
  __syncwarp();
  if (n_group > 1) {
    const int gs = E / n_group;
    // the CPU's scan: best and second best biased key of the group, summed in fp32; then topk_group groups by that
    // sum (NaN lowest, ties to the lower group), one group per lane
    unsigned g_img = 0u, g_idx = MOE_NO_CANDIDATE;
    if (lane < n_group) {
      float best = -INFINITY, second = -INFINITY;
      for (int i = lane * gs; i < (lane + 1) * gs; i++) {
        float v = key[i];
        if (v > best) { second = best; best = v; } else if (v > second) second = v;
      }
      g_img = moe_key_image(best + second);
      g_idx = (unsigned)lane;
    }
    for (int i = lane; i < E; i += 32) okw[i] = 0;
    __syncwarp();
    for (int g = 0; g < topk_group; g++) {
      const unsigned bg = moe_warp_best(g_img, g_idx);
      if (lane == (int)bg) g_idx = MOE_NO_CANDIDATE;
      for (int i = (int)bg * gs + lane; i < ((int)bg + 1) * gs; i += 32) okw[i] = 1;
    }
    __syncwarp();
  }
  // images in place of the keys (each lane rewrites only its own entries)
  for (int i = lane; i < E; i += 32) img[i] = moe_key_image(key[i]);
  __syncwarp();
  // k rounds: the warp's best live candidate is chosen j; only its lane looks for its next best
  unsigned b_img, b_idx;
  moe_lane_best(img, okw, E, b_img, b_idx);
  int mine = 0;  // lane j < k: chosen expert j
  for (int j = 0; j < k; j++) {
    const unsigned b = moe_warp_best(b_img, b_idx);  // a candidate is left: k <= eligible experts (checked on the host)
    if (lane == j) mine = (int)b;
    if (b != MOE_NO_CANDIDATE && lane == (int)(b & 31)) {
      okw[b] = 0;
      moe_lane_best(img, okw, E, b_img, b_idx);
    }
  }
  if (lane < k) chosen[lane] = mine;
  __syncwarp();
  if (scoring == 0) {
    // weights in double as the CPU computes them: exp(l - max) / (sum over all, or over the chosen when renormalized)
    float mx = -INFINITY;
    for (int i = lane; i < E; i += 32) mx = fmaxf(mx, row[i]);
    mx = moe_warp_max(mx);
    double all = 0.0;  // only when not renormalized over the chosen
    if (!norm_topk) {
      for (int i = lane; i < E; i += 32) all += exp((double)row[i] - (double)mx);
      for (int o = 16; o > 0; o >>= 1) all += __shfl_xor_sync(0xffffffffu, all, o);
    }
    // lane j < k computes chosen j's exp (k <= 32); the sum stays in selection order (every lane adds the same values)
    const int e = lane < k ? chosen[lane] : 0;
    const double ej = lane < k ? exp((double)row[e] - (double)mx) : 0.0;
    double sel = 0.0;
    for (int j = 0; j < k; j++) sel += __shfl_sync(0xffffffffu, ej, j);
    const double denom = norm_topk ? sel : all;
    if (lane < k) {
      topk_expert[(size_t)t * k + lane] = e;
      topk_weight[(size_t)t * k + lane] = (float)(ej / denom);
    }
  } else if (lane == 0) {
    double sum = 0.0;
    for (int j = 0; j < k; j++) sum += (double)score[chosen[j]];
    for (int j = 0; j < k; j++) {
      int e = chosen[j];
      double wgt = (double)score[e];
      if (norm_topk) wgt = wgt / (sum + 1e-20);
      topk_expert[(size_t)t * k + j] = e;
      topk_weight[(size_t)t * k + j] = (float)(wgt * (double)scaling);
    }
  }
  if (lane == 0 && shared_row_weight) shared_row_weight[t] = shared_gated ? moe_sigmoid(row[E]) : 1.0f;
}
