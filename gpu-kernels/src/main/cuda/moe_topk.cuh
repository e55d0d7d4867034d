// Top-k selection of one token by one warp (moe_route_topk in moe_route.cu; the small-batch route kernel in
// moe_decode.cu): the keys and tie rule of the CPU engine's Router - softmax families rank logits, DeepSeek ranks fp32
// sigmoid(l) + bias, groups by the sum of their two best keys, dropped groups never eligible; equal keys -> lower index.
#pragma once
#include "moe_common.cuh"

// a ranks strictly above b: larger key, NaN below everything, equal keys to the lower index.
__device__ __forceinline__ bool moe_better(float ka, int ia, float kb, int ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  bool na = isnan(ka), nb = isnan(kb);
  if (na != nb) return nb;
  if (!na && ka != kb) return ka > kb;
  return ia < ib;
}

// The best eligible candidate of n (keys in shared memory) across the warp; ties to the lower index.
__device__ int moe_warp_argmax(const float* key, const unsigned char* ok, int n) {
  const int lane = threadIdx.x & 31;
  float bk = 0.0f;
  int bi = -1;
  for (int i = lane; i < n; i += 32) {
    if (ok[i] && moe_better(key[i], i, bk, bi)) { bk = key[i]; bi = i; }
  }
  for (int o = 16; o > 0; o >>= 1) {
    float ok2 = __shfl_xor_sync(0xffffffffu, bk, o);
    int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (moe_better(ok2, oi, bk, bi)) { bk = ok2; bi = oi; }
  }
  return bi;
}

// One warp selects token t's k experts from its logits row (n_out values: E experts, then Qwen2-MoE's shared gate) and
// writes topk_expert/topk_weight [t, 0..k) in selection order (best first) and, when shared_row_weight is given, the
// shared expert's row weight (1, or sigmoid(shared gate logit) when gated). Scratch: key, score (E floats) and okw (E
// bytes) per warp; gkeys, gok, chosen: 32 entries per warp. Weights in double as the CPU computes them.
__device__ __forceinline__ void moe_topk_token(
    const float* __restrict__ row, const float* __restrict__ bias, int t, int* __restrict__ topk_expert,
    float* __restrict__ topk_weight, float* __restrict__ shared_row_weight, int E, int k, int scoring, int n_group,
    int topk_group, int norm_topk, float scaling, int shared_gated, float* key, float* score, unsigned char* okw,
    float* gkeys, unsigned char* gok, int* chosen) {
  const int lane = threadIdx.x & 31;
  for (int i = lane; i < E; i += 32) {
    float l = row[i];
    if (scoring == 0) {
      key[i] = l;  // softmax is increasing: ranking by logits is ranking by probability, free of rounding ties
      score[i] = l;
    } else {
      float s = moe_sigmoid(l);
      score[i] = s;
      key[i] = bias ? s + bias[i] : s;
    }
    okw[i] = 1;
  }
  __syncwarp();
  if (n_group > 1) {
    const int gs = E / n_group;
    if (lane < n_group) {  // the CPU's scan: best and second best biased key of the group, summed in fp32
      float best = -INFINITY, second = -INFINITY;
      for (int i = lane * gs; i < (lane + 1) * gs; i++) {
        float v = key[i];
        if (v > best) { second = best; best = v; } else if (v > second) second = v;
      }
      gkeys[lane] = best + second;
      gok[lane] = 1;
    }
    __syncwarp();
    for (int i = lane; i < E; i += 32) okw[i] = 0;
    __syncwarp();
    for (int g = 0; g < topk_group; g++) {
      int bg = moe_warp_argmax(gkeys, gok, n_group);
      __syncwarp();
      if (lane == 0) gok[bg] = 0;
      for (int i = bg * gs + lane; i < (bg + 1) * gs; i += 32) okw[i] = 1;
      __syncwarp();
    }
  }
  for (int j = 0; j < k; j++) {
    int b = moe_warp_argmax(key, okw, E);
    __syncwarp();
    if (lane == 0) { chosen[j] = b; okw[b] = 0; }
    __syncwarp();
  }
  if (scoring == 0) {
    // weights in double as the CPU computes them: exp(l - max) / (sum over all, or over the chosen when renormalized)
    float mx = -INFINITY;
    for (int i = lane; i < E; i += 32) mx = fmaxf(mx, row[i]);
    mx = moe_warp_max(mx);
    double all = 0.0;
    for (int i = lane; i < E; i += 32) all += exp((double)row[i] - (double)mx);
    for (int o = 16; o > 0; o >>= 1) all += __shfl_xor_sync(0xffffffffu, all, o);
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
