#!/usr/bin/env python3
"""A float32 NumPy/OpenBLAS forward of one MoE layer: the baseline the CPU engine is measured against.

Reads the same safetensors checkpoint as the Java engine (header parsed with json, tensors memory-mapped with
numpy.memmap, BF16 widened to float32 as uint16 << 16), routes the same way (softmax, top-k with ties to the lower
expert index, renormalized when norm_topk_prob), then runs per-expert np.matmul over the tokens routed to each
expert: down(silu(x @ gate.T) * (x @ up.T)) times the routing weight, summed per token. Mixtral and Qwen3-MoE layers
(softmax routing, no shared expert) only.

Times the forward alone (weights already converted to float32 and resident, as in the Java engine) and prints it.

    python3 scripts/bench/numpy_moe_layer.py --model DIR [--layer L] [--tokens 4096] [--input X.f32] [--compare Y.f32]

--input / --compare are raw little-endian float32 [T, H] files (CpuEngineBench writes them); --compare prints the
relative error of the Java output against this forward. Unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for a default
kernel choice; OPENBLAS_VERBOSE=2 makes OpenBLAS print the kernel it picked.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def read_safetensors_index(model_dir):
    """Maps tensor name -> (file, dtype, shape, begin, end) for a single-file or sharded checkpoint."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        path = os.path.join(model_dir, name)
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
        for tensor, meta in header.items():
            if tensor == "__metadata__":
                continue
            begin, end = meta["data_offsets"]
            tensors[tensor] = (path, meta["dtype"], tuple(meta["shape"]), 8 + header_len + begin, 8 + header_len + end)
    return tensors


def load_f32(tensors, name):
    path, dtype, shape, begin, end = tensors[name]
    if dtype == "F32":
        return np.array(np.memmap(path, dtype="<f4", mode="r", offset=begin, shape=shape))
    if dtype == "BF16":
        raw = np.memmap(path, dtype="<u2", mode="r", offset=begin, shape=shape)
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return np.memmap(path, dtype="<f2", mode="r", offset=begin, shape=shape).astype(np.float32)
    raise SystemExit(f"tensor {name}: dtype {dtype} not supported by this baseline (F32, BF16, F16)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--input", help="raw float32 [T, H] input (else N(0,1) with --seed)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--compare", help="raw float32 [T, H] output of the Java engine for the same input")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()

    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    family = cfg["model_type"]
    h = cfg["hidden_size"]
    k = cfg["num_experts_per_tok"]
    if family == "mixtral":
        n_exp, prefix, names, norm = cfg["num_local_experts"], f"model.layers.{a.layer}.block_sparse_moe", ("w1", "w3", "w2"), True
    elif family == "qwen3_moe":
        n_exp, prefix, names, norm = cfg["num_experts"], f"model.layers.{a.layer}.mlp", ("gate_proj", "up_proj", "down_proj"), cfg.get("norm_topk_prob", False)
    else:
        raise SystemExit(f"model_type {family}: this baseline covers mixtral and qwen3_moe")

    t_load = time.perf_counter()
    tensors = read_safetensors_index(a.model)
    router = load_f32(tensors, f"{prefix}.gate.weight")
    gate_up, down = [], []
    for e in range(n_exp):
        g = load_f32(tensors, f"{prefix}.experts.{e}.{names[0]}.weight")
        u = load_f32(tensors, f"{prefix}.experts.{e}.{names[1]}.weight")
        gate_up.append(np.ascontiguousarray(np.concatenate([g, u], axis=0)))  # [2I, H]
        down.append(load_f32(tensors, f"{prefix}.experts.{e}.{names[2]}.weight"))  # [H, I]
    inter = down[0].shape[1]
    t_load = time.perf_counter() - t_load

    if a.input:
        x = np.fromfile(a.input, dtype="<f4").reshape(-1, h)
    else:
        x = np.random.default_rng(a.seed).standard_normal((a.tokens, h), dtype=np.float32)
    t = x.shape[0]

    def forward(x):
        logits = x @ router.T                                           # [T, E] fp32
        chosen = np.argsort(-logits, axis=1, kind="stable")[:, :k]      # ties: lower index first
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        weights = np.take_along_axis(p, chosen, axis=1)
        if norm:
            weights /= weights.sum(axis=1, keepdims=True)
        out = np.zeros_like(x)
        for e in range(n_exp):
            rows, slot = np.nonzero(chosen == e)
            if rows.size == 0:
                continue
            gu = x[rows] @ gate_up[e].T                                 # [n, 2I]
            g, u = gu[:, :inter], gu[:, inter:]
            act = g / (1 + np.exp(-g)) * u
            out[rows] += weights[rows, slot, None] * (act @ down[e].T)  # a token meets an expert at most once
        return out

    times, cpu_times = [], []
    for _ in range(a.repeat):
        c0, t0 = os.times(), time.perf_counter()
        y = forward(x)
        c1 = os.times()
        times.append(time.perf_counter() - t0)
        cpu_times.append((c1.user - c0.user) + (c1.system - c0.system))
    print(f"numpy {np.__version__}, {family}, T={t}, H={h}, I={inter}, E={n_exp}, top-{k}")
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            print(f"  blas: {pool.get('internal_api')} {pool.get('version')} threads={pool.get('num_threads')} core={pool.get('architecture')}")
    except ImportError:
        print("  (threadpoolctl not installed; OPENBLAS_VERBOSE=2 prints the kernel)")
    print(f"load + fp32 conversion {t_load:.2f} s (excluded)")
    print("forward " + ", ".join(f"{s:.2f} s" for s in times) + f"  (best {min(times):.2f} s, {t / min(times):.0f} tokens/s)")
    print("process CPU time per forward (all threads) " + ", ".join(f"{s:.2f} s" for s in cpu_times))
    if a.compare:
        ref = np.fromfile(a.compare, dtype="<f4").reshape(-1, h).astype(np.float64)
        err = np.linalg.norm(ref - y.astype(np.float64)) / np.linalg.norm(y.astype(np.float64))
        print(f"relative difference Java engine vs this forward: {err:.3e}")


if __name__ == "__main__":
    sys.exit(main())
