#!/usr/bin/env python3
"""The peer of `moe bench`: the same MoE layer (router, top-k routing of the family, permutation into expert groups,
SwiGLU experts, weighted combine, shared expert) in PyTorch, with its grouped GEMMs:
  native: torch._grouped_mm in bf16;  fp8: torch._scaled_grouped_mm with rowwise e4m3 scales (use_fast_accum).
The glue (routing, permutation, quantization, combine) is plain torch, eager, without host synchronization.
Timing as `moe bench` does it: CUDA events around one layer call, median of --runs after --warmup, inputs rotated so
L2 does not hold them. Prints one JSON object per token count on stdout.
Usage: torch_moe_layer.py --shape deepseek-v3 --precision fp8 --tokens 16,512,4096 [--runs 20 --warmup 5]
"""
import argparse
import json
import sys

import torch

SHAPES = {  # H, I, E, top-k, shared intermediate, scoring, groups, keep groups, norm_topk, scaling
    "mixtral-8x7b": dict(H=4096, I=14336, E=8, k=2, shared=0, sigmoid=False, groups=1, keep=1, norm=True, scale=1.0),
    "qwen3-30b-a3b": dict(H=2048, I=768, E=128, k=8, shared=0, sigmoid=False, groups=1, keep=1, norm=True, scale=1.0),
    "deepseek-v3": dict(H=7168, I=2048, E=256, k=8, shared=2048, sigmoid=True, groups=8, keep=4, norm=True, scale=2.5),
}
ALIGN = 16  # rows per expert group are padded to this (torch's grouped GEMMs want aligned group starts)
DEV = "cuda"


def rowwise_fp8(x):
    """e4m3 values and one fp32 scale per row (amax / 448)."""
    amax = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    q = (x.float() * (448.0 / amax)).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, (amax / 448.0).squeeze(-1)


class Layer:
    def __init__(self, s, fp8, seed):
        g = torch.Generator(device=DEV).manual_seed(seed)
        H, I, E = s["H"], s["I"], s["E"]
        self.s, self.fp8 = s, fp8
        self.router = torch.randn(E, H, device=DEV, generator=g) / H ** 0.5
        self.bias = torch.randn(E, device=DEV, generator=g) * 0.01 if s["sigmoid"] else None
        w1 = torch.randn(E, 2 * I, H, device=DEV, dtype=torch.bfloat16, generator=g) / H ** 0.5  # [gate; up] rows
        w2 = torch.randn(E, H, I, device=DEV, dtype=torch.bfloat16, generator=g) / I ** 0.5
        if s["shared"]:
            ws1 = torch.randn(2 * s["shared"], H, device=DEV, dtype=torch.bfloat16, generator=g) / H ** 0.5
            ws2 = torch.randn(H, s["shared"], device=DEV, dtype=torch.bfloat16, generator=g) / s["shared"] ** 0.5
        if fp8:
            self.w1, self.w1s = rowwise_fp8(w1)  # scale per output row = per column of B
            self.w2, self.w2s = rowwise_fp8(w2)
            del w1, w2
            if s["shared"]:
                self.ws1, self.ws1s = rowwise_fp8(ws1)
                self.ws2, self.ws2s = rowwise_fp8(ws2)
        else:
            self.w1, self.w2 = w1, w2
            if s["shared"]:
                self.ws1, self.ws2 = ws1, ws2
        self.weight_bytes = sum(t.numel() * t.element_size() for t in (self.w1, self.w2))

    def route(self, x):
        s = self.s
        logits = x @ self.router.t()  # fp32 router
        if s["sigmoid"]:
            scores = logits.sigmoid()
            keys = scores + self.bias
            if s["groups"] > 1:
                T = x.shape[0]
                gscore = keys.view(T, s["groups"], -1).topk(2, dim=-1).values.sum(-1)
                keep = gscore.topk(s["keep"], dim=-1).indices
                mask = torch.zeros_like(gscore, dtype=torch.bool).scatter_(1, keep, True)
                keys = keys.masked_fill(~mask.repeat_interleave(s["E"] // s["groups"], dim=1), float("-inf"))
            idx = keys.topk(s["k"], dim=-1).indices
            w = scores.gather(1, idx)
            if s["norm"]:
                w = w / (w.sum(-1, keepdim=True) + 1e-20)
            w = w * s["scale"]
        else:
            probs = logits.softmax(dim=-1)
            w, idx = probs.topk(s["k"], dim=-1)
            if s["norm"]:
                w = w / w.sum(-1, keepdim=True)
        return idx, w

    def swiglu(self, h):
        I = h.shape[-1] // 2
        return torch.nn.functional.silu(h[:, :I]) * h[:, I:]

    def forward(self, x):
        s = self.s
        T, E, k = x.shape[0], s["E"], s["k"]
        idx, w = self.route(x)
        flat = idx.flatten()
        order = flat.argsort(stable=True)
        counts = torch.bincount(flat, minlength=E)
        padded = (counts + ALIGN - 1) // ALIGN * ALIGN
        ends = padded.cumsum(0)
        starts = ends - padded
        sorted_e = flat[order]
        rank = torch.arange(T * k, device=DEV) - (counts.cumsum(0) - counts)[sorted_e]
        dest = starts[sorted_e] + rank
        rows = T * k + (ALIGN - 1) * E  # an upper bound: no host synchronization for the true size
        offs = ends.to(torch.int32)
        token = order // k
        xb = x.to(torch.bfloat16)
        if self.fp8:
            xq, xs = rowwise_fp8(xb)
            a = torch.zeros(rows, s["H"], device=DEV, dtype=torch.float8_e4m3fn)
            a_s = torch.ones(rows, device=DEV)
            a[dest] = xq[token]
            a_s[dest] = xs[token]
            h = torch._scaled_grouped_mm(a, self.w1.transpose(-2, -1), a_s, self.w1s, offs=offs,
                                         out_dtype=torch.bfloat16, use_fast_accum=True)
            hq, hs = rowwise_fp8(self.swiglu(h))
            y = torch._scaled_grouped_mm(hq, self.w2.transpose(-2, -1), hs, self.w2s, offs=offs,
                                         out_dtype=torch.bfloat16, use_fast_accum=True)
        else:
            a = torch.zeros(rows, s["H"], device=DEV, dtype=torch.bfloat16)
            a[dest] = xb[token]
            h = torch._grouped_mm(a, self.w1.transpose(-2, -1), offs=offs, out_dtype=torch.bfloat16)
            y = torch._grouped_mm(self.swiglu(h), self.w2.transpose(-2, -1), offs=offs, out_dtype=torch.bfloat16)
        per_entry = torch.empty(T * k, s["H"], device=DEV, dtype=torch.float32)
        per_entry[order] = y[dest].float() * w.flatten()[order, None]
        out = per_entry.view(T, k, s["H"]).sum(1)
        if s["shared"]:
            if self.fp8:
                hsd = torch._scaled_mm(xq, self.ws1.t(), xs[:, None], self.ws1s[None, :], out_dtype=torch.bfloat16, use_fast_accum=True)
                q2, s2 = rowwise_fp8(self.swiglu(hsd))
                out += torch._scaled_mm(q2, self.ws2.t(), s2[:, None], self.ws2s[None, :], out_dtype=torch.bfloat16, use_fast_accum=True).float()
            else:
                out += (self.swiglu(xb @ self.ws1.t()) @ self.ws2.t()).float()
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--precision", required=True, choices=["native", "fp8"])
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rotations", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 0:
        sys.exit("--runs must be >= 1 and --warmup >= 0")
    s = SHAPES[args.shape]
    torch.manual_seed(args.seed)
    layer = Layer(s, args.precision == "fp8", args.seed)
    for T in [int(t) for t in args.tokens.split(",")]:
        xs = [torch.randn(T, s["H"], device=DEV) for _ in range(args.rotations)]
        times = []
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.no_grad():
            for i in range(args.warmup + args.runs):
                x = xs[i % args.rotations]
                start.record()
                layer.forward(x)
                end.record()
                end.synchronize()
                if i >= args.warmup:
                    times.append(start.elapsed_time(end))
        times.sort()
        med = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
        print(json.dumps({"shape": args.shape, "precision": args.precision, "tokens": T, "median_ms": med,
                          "min_ms": times[0], "runs": args.runs, "torch": torch.__version__}), flush=True)
        del xs
    del layer
    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
