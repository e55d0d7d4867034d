package dev.sparkmoe.kernels;

import dev.sparkmoe.cuda.CudaFunction;
import dev.sparkmoe.cuda.CudaFunction.Dim;
import dev.sparkmoe.cuda.CudaModule;
import dev.sparkmoe.cuda.CudaStream;
import dev.sparkmoe.cuda.DeviceBuffer;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.ScoringFunction;

/**
 * Launcher of moe_route.cu (router logits with fp64 accumulation, top-k selection for every routing function) and
 * moe_route_certified.cu (the certified router: BF16 tensor-core logits, a per-token certificate that the selection is
 * the CPU's, the fp64 kernels for the tokens it cannot clear).
 */
public final class MoeRoute {
    /** Router logit tile (tokens and outputs) of moe_router_logits. */
    static final int LOGIT_TILE = 64;
    /** Tokens (warps) per block of moe_route_topk. */
    static final int ROUTE_WARPS = 4;
    /** Dynamic shared memory of moe_router_logits_tc: 3 stages x (x and w tiles of 64 rows x 36 floats). */
    static final int TC_SMEM_BYTES = 3 * 2 * 64 * 36 * 4;
    /** Of moe_router_logits_tc2: 3 stages of fp64 w tiles and of fp32 x tiles, one fp64 x tile (64 rows x 36 each). */
    static final int TC2_SMEM_BYTES = 3 * 64 * 36 * 8 + 64 * 36 * 8 + 3 * 64 * 36 * 4;
    /** Of moe_router_logits_tc2o: as TC2 with 2 stages (72 KB: three CTAs fit an SM). */
    static final int TC2O_SMEM_BYTES = 2 * 64 * 36 * 8 + 64 * 36 * 8 + 2 * 64 * 36 * 4;
    /**
     * Of moe_router_logits_tc3 (128x128 tiles, one CTA per SM): 3 stages of fp64 w tiles (128 rows x 32), 2 widened fp64
     * x tiles (128 x 32), 2 stages of fp32 x tiles (128 rows x 36).
     */
    static final int TC3_SMEM_BYTES = 3 * 128 * 32 * 8 + 2 * 128 * 32 * 8 + 2 * 128 * 36 * 4;
    /** Output tile (tokens and outputs) of moe_router_logits_tc3. */
    static final int TC3_TILE = 128;
    /** Of moe_router_logits_bf16x3: 3 stages of fp32 x tiles (64 rows x 40) and bf16 router tiles (64 rows x 40). */
    static final int CERT_SMEM_BYTES = 3 * (64 * 40 * 4 + 64 * 40 * 2);
    /**
     * Of moe_router_logits_bf16x3_wg: 4 stages of three bf16 x planes (64 rows x 128 B), a bf16 router tile (128 rows x
     * 128 B) and the fp32 x tile (64 rows x 256 B), 1024 bytes of alignment slack and the mbarriers (RW_SMEM_BYTES).
     */
    static final int CERTWG_SMEM_BYTES = 4 * (3 * 64 * 128 + 128 * 128 + 64 * 256) + 1024 + 64;
    /** Tokens and experts of a moe_router_logits_bf16x3_wg CTA; its K stages are 64 wide. */
    static final int CERTWG_TOKENS = 64, CERTWG_EXPERTS = 128;
    /** Threads of a moe_router_logits_bf16x3_wg CTA: a producer and two consumer warpgroups (RW_THREADS). */
    static final int CERTWG_THREADS = 384;
    /** K per stage of moe_router_logits_bf16x3_wg: the hidden size must be a multiple of it. */
    public static final int CERTWG_K_STAGE = 64;
    /**
     * The certified router's error bound per logit, in units of ||x|| ||w||: 76 x 2^-23, above the (72 + 2.25) x 2^-23
     * (+ 0.2 % for the split terms' magnitudes) that its chains of BF16 MMAs with fp32 accumulation can lose
     * (moe_route_certified.cu).
     */
    public static final float CERT_BOUND_SCALE = 76 * 0x1p-23f;
    /** K splits of the certified router's fp64 fallback launch (cut on the device to what the partial sums buffer holds). */
    static final int CERT_FALLBACK_SPLITS = 16;
    /** The most experts moe_route_topk keeps per warp in shared memory (MOE_MAX_EXPERTS). */
    public static final int MAX_EXPERTS = 1024;
    /** The most choices per token and the most expert groups (one warp). */
    public static final int MAX_TOP_K = 32;

    /** The router logits kernels (all accumulate in fp64 and round once to fp32). */
    public enum Kernel {
        /** fp64 FMA, 64x64 tiles. */
        SIMT("moe_router_logits", 0, false),
        /** fp64 tensor cores (DMMA), fp32 tiles widened at every fragment load. */
        TC("moe_router_logits_tc", TC_SMEM_BYTES, false),
        /** As TC, bitwise the same sums, with the router weights in fp64 (see {@link #widenWeights}) and x widened once per tile. */
        TC2("moe_router_logits_tc2", TC2_SMEM_BYTES, true),
        /** TC2 with the x-widening shared-memory stores free of bank conflicts (session 4). */
        TC2W("moe_router_logits_tc2w", TC2_SMEM_BYTES, true),
        /** TC2W with 2 cp.async stages and at most 168 registers: 3 CTAs (12 warps) per SM instead of 2 (session 4). */
        TC2O("moe_router_logits_tc2o", TC2O_SMEM_BYTES, true),
        /**
         * The sums of TC2 on 128x128 tiles of 8 warps (one CTA per SM, fragments loaded as pairs, one barrier per K
         * step), split K only to fill the GPU once; the same fp64 router weights as TC2.
         */
        TC3("moe_router_logits_tc3", TC3_SMEM_BYTES, true),
        /** TC3 with the m16n8k16 DMMA (the shape CUTLASS's SM90 DGEMM uses): half the instructions per FMA. */
        TC3K16("moe_router_logits_tc3k16", TC3_SMEM_BYTES, true),
        /**
         * The certified router (session 12): logits on the BF16 tensor cores (x split exactly into three bf16 terms,
         * bf16-exact router weights), a per-token certificate that the CPU's selection is the same, and TC2W's fp64
         * sums (and selection) for the tokens it cannot clear. Needs router weights that bf16 holds exactly.
         */
        CERT("moe_router_logits_bf16x3", CERT_SMEM_BYTES, true),
        /**
         * CERT's sums, certificate and fallback with the logits on warpgroup MMAs (session 13): 64x128 tiles, x split
         * once per CTA by a producer warpgroup, two consumer warpgroups of wgmma m64n64k16. Needs a hidden size that is a
         * multiple of 64.
         */
        CERTWG("moe_router_logits_bf16x3_wg", CERTWG_SMEM_BYTES, true),
        /**
         * CERTWG when the layer's router weights are exact in bf16 (checkpoints store them so) and the hidden size a
         * multiple of 64, CERT for other hidden sizes, else TC2W.
         */
        AUTO(null, 0, true);

        final String function;
        final int smemBytes;
        private final boolean f64Weights;

        Kernel(String function, int smemBytes, boolean f64Weights) {
            this.function = function;
            this.smemBytes = smemBytes;
            this.f64Weights = f64Weights;
        }

        /** The kernel of a {@code sparkmoe.gpu.routerKernel} value: auto, cert, certwg, simt, tc, tc2, tc2w, tc2o, tc3 or tc3k16. */
        public static Kernel parse(String s) {
            for (Kernel k : values()) if (k.name().equalsIgnoreCase(s)) return k;
            throw new IllegalArgumentException("router kernel must be auto, cert, certwg, simt, tc, tc2, tc2w, tc2o, tc3 or tc3k16, got '" + s + "'");
        }

        /** The certified router's kernels (CERT, CERTWG): bf16 router copy, certificate, fp64 fallback. */
        public boolean certified() { return this == CERT || this == CERTWG; }

        /**
         * AUTO resolved for a layer whose router weights are ({@code bf16Exact}) or are not all exact in bf16, of the
         * given hidden size.
         */
        public Kernel resolve(boolean bf16Exact, int hidden) {
            if (this != AUTO) return this;
            if (!bf16Exact) return TC2W;
            return hidden % CERTWG_K_STAGE == 0 ? CERTWG : CERT;
        }

        /** Whether {@link #logits} takes the router weights in fp64. */
        public boolean wantsF64Weights() { return f64Weights; }

        /** 128x128 tiles of 256 threads, one CTA per SM (TC3, TC3K16); else 64x64 tiles of 128 threads. */
        boolean wide() { return this == TC3 || this == TC3K16; }

        /** Output tile edge (tokens and outputs) of the kernel's CTAs. */
        int tile() { return wide() ? TC3_TILE : LOGIT_TILE; }
    }

    private final CudaFunction logits;
    private final CudaFunction reduce;
    private final CudaFunction widen;
    private final Kernel kernel;
    private final CudaFunction topk;
    private final int smCount;

    private final CudaFunction certTopk, listLogits, listReduce, listTopk;

    /** @param kernel a resolved kernel (not AUTO: see {@link Kernel#resolve}) */
    public MoeRoute(CudaModule module, int smCount, Kernel kernel) {
        if (kernel == null || kernel == Kernel.AUTO) throw new IllegalArgumentException("router kernel must be resolved, got " + kernel);
        this.smCount = smCount;
        this.reduce = module.function("moe_router_logits_reduce");
        this.widen = module.function("moe_f32_to_f64");
        this.kernel = kernel;
        this.logits = module.function(kernel.function);
        this.topk = module.function("moe_route_topk");
        boolean cert = kernel.certified();
        this.certTopk = cert ? module.function("moe_route_topk_certified") : null;
        this.listLogits = cert ? module.function("moe_router_logits_tc2w_list") : null;
        this.listReduce = cert ? module.function("moe_router_logits_reduce_list") : null;
        this.listTopk = cert ? module.function("moe_route_topk_list") : null;
    }

    public Kernel kernel() { return kernel; }

    /** {@code dst[0, n) = (double) src[0, n)}, exactly: the router weights of the kernels that {@link Kernel#wantsF64Weights}, once at load. */
    public void widenWeights(CudaStream s, DeviceBuffer src, DeviceBuffer dst) {
        if (src.elementBytes() != 4 || dst.elementBytes() != 8 || dst.count() < src.count()) {
            throw new IllegalArgumentException("moe_f32_to_f64: '" + src.name() + "' (" + src.count() + " x " + src.elementBytes()
                    + " B) does not fit '" + dst.name() + "' (" + dst.count() + " x " + dst.elementBytes() + " B)");
        }
        widen.launch(s, Dim.of(Math.max(1, Math.min(1024, ceilDiv(src.count(), 256)))), Dim.of(256), 0, src, dst, src.count());
    }

    /**
     * K splits of the tensor-core logits kernels TC and TC2 for a launch sized for {@code tokenCapacity}: enough CTAs to
     * cover the GPU about twice (two CTAs fit an SM) when the token tiles alone do not (few tokens), each split at least
     * 256 of K.
     */
    public static int splits(int tokenCapacity, int nOut, int hidden, int smCount) {
        return splits(Kernel.TC2, tokenCapacity, nOut, hidden, smCount);
    }

    /**
     * K splits of {@code kernel} (TC, TC2: up to two waves of 64x64 tiles, as {@link #splits(int, int, int, int)}; TC3, TC3K16:
     * one CTA per SM, so split only while the 128x128 tiles fill less than one wave, to at most one wave), each split at
     * least 256 of K.
     */
    public static int splits(Kernel kernel, int tokenCapacity, int nOut, int hidden, int smCount) {
        int tiles = ceilDiv(nOut, kernel.tile()) * ceilDiv(tokenCapacity, kernel.tile());
        int ctasPerWave = kernel.wide() ? smCount : 2 * smCount;
        int s = Math.max(1, Math.min(ctasPerWave / tiles, hidden / 256));
        return ceilDiv(hidden, kPerSplit(hidden, s));
    }

    private static int kPerSplit(int hidden, int splits) { return ceilDiv(ceilDiv(hidden, splits), 32) * 32; }

    /**
     * K splits of the certified router's logits launch: CERT as TC2; CERTWG (64x128 tiles, one CTA per SM) split only
     * while its tiles fill less than one wave, to at most one wave, each split a multiple of 64 and at least 256 of K.
     */
    public static int certifiedSplits(Kernel kernel, int tokenCapacity, int nOut, int hidden, int smCount) {
        if (kernel != Kernel.CERTWG) return splits(Kernel.TC2, tokenCapacity, nOut, hidden, smCount);
        int tiles = ceilDiv(nOut, CERTWG_EXPERTS) * ceilDiv(tokenCapacity, CERTWG_TOKENS);
        int s = Math.max(1, Math.min(smCount / tiles, hidden / 256));
        return ceilDiv(hidden, certwgKPerSplit(hidden, s));
    }

    private static int certwgKPerSplit(int hidden, int splits) {
        return ceilDiv(ceilDiv(hidden, splits), CERTWG_K_STAGE) * CERTWG_K_STAGE;
    }

    /**
     * Doubles of the split-K partial sums buffer that serves every launch of every kernel on a device of {@code smCount}
     * SMs: a split launch has at most 2 x smCount 64x64 tiles (TC, TC2) or smCount 128x128 tiles (TC3, TC3K16), each split.
     */
    public static long partialDoubles(int smCount) {
        return Math.max(2L * smCount * LOGIT_TILE * LOGIT_TILE, (long) smCount * TC3_TILE * TC3_TILE);
    }

    /**
     * logits [tokens, nOut] = x [tokens, H] . w [nOut, H]^T, for the device token count (grid sized for tokenCapacity);
     * {@code partial} holds {@link #partialDoubles} doubles (split-K partial sums). {@code w} is fp32, or fp64 for
     * the kernels that {@link Kernel#wantsF64Weights}.
     */
    public void logits(CudaStream s, DeviceBuffer x, DeviceBuffer w, DeviceBuffer out, DeviceBuffer partial, DeviceBuffer numTokens,
                       int tokenCapacity, int hidden, int nOut) {
        if (kernel.certified()) throw new IllegalStateException("the " + kernel + " router launches through certifiedLogits and certifiedTopk");
        Dim grid2 = Dim.of(ceilDiv(nOut, kernel.tile()), ceilDiv(tokenCapacity, kernel.tile()));
        if (w.elementBytes() != (kernel.wantsF64Weights() ? 8 : 4)) {
            throw new IllegalArgumentException("router kernel " + kernel + " needs " + (kernel.wantsF64Weights() ? "fp64" : "fp32")
                    + " weights, got '" + w.name() + "' of " + w.elementBytes() + "-byte elements");
        }
        if (kernel == Kernel.SIMT) {
            logits.launch(s, grid2, Dim.of(256), 0, x, w, out, numTokens, hidden, nOut);
            return;
        }
        int splits = splits(kernel, tokenCapacity, nOut, hidden, smCount);
        int kps = kPerSplit(hidden, splits);
        logits.launch(s, new Dim(grid2.x(), grid2.y(), splits), Dim.of(kernel.wide() ? 256 : 128), kernel.smemBytes, x, w, out, partial, numTokens, hidden, nOut, kps);
        if (splits > 1) {
            reduce.launch(s, Dim.of(Math.max(1, ceilDiv((long) tokenCapacity * nOut, 256))), Dim.of(256), 0, partial, out, numTokens, nOut, splits);
        }
    }

    /**
     * Top-k per token into topkExpert/topkWeight [tokens, k]; sharedRowWeight (nullable) gets 1 or the Qwen2-MoE gate;
     * sharedNumBlocks (nullable) gets ceil(tokens / 128).
     */
    public void topk(CudaStream s, MoeConfig c, DeviceBuffer logitsBuf, DeviceBuffer bias, DeviceBuffer topkExpert,
                     DeviceBuffer topkWeight, DeviceBuffer sharedRowWeight, DeviceBuffer sharedNumBlocks,
                     DeviceBuffer numTokens, int tokenCapacity, int nOut) {
        int smem = topkSmemBytes(c);
        topk.launch(s, Dim.of(ceilDiv(tokenCapacity, ROUTE_WARPS)), Dim.of(ROUTE_WARPS * 32), smem,
                logitsBuf, nullable(bias), topkExpert, topkWeight, nullable(sharedRowWeight), nullable(sharedNumBlocks), numTokens,
                c.numExperts(), nOut, c.topK(), scoring(c), c.nGroup(), c.topkGroup(),
                c.normTopkProb() ? 1 : 0, c.routedScalingFactor(), c.sharedExpertGated() ? 1 : 0);
    }

    /**
     * Once at load, for the certified router: {@code wBf16} = bf16 copy of the fp32 router {@code w} [nOut, hidden],
     * {@code wNorm[e]} >= ||w_e|| (fp32, rounded up) and {@code inexact[0]} += the number of values bf16 does not hold
     * exactly (zero it first; the certified router needs 0).
     */
    public static void prepareCertified(CudaModule module, CudaStream s, DeviceBuffer w, DeviceBuffer wBf16, DeviceBuffer wNorm,
                                        DeviceBuffer inexact, int nOut, int hidden) {
        long n = (long) nOut * hidden;
        if (w.count() < n || wBf16.count() < n || wBf16.elementBytes() != 2 || wNorm.count() < nOut) {
            throw new IllegalArgumentException("moe_router_prepare_bf16: " + nOut + " x " + hidden + " router does not fit '" + w.name()
                    + "', '" + wBf16.name() + "' or '" + wNorm.name() + "'");
        }
        module.function("moe_router_prepare_bf16").launch(s, Dim.of(ceilDiv(nOut, 8)), Dim.of(256), 0, w, wBf16, wNorm, inexact, nOut, hidden);
    }

    /** Device buffers of the certified router (CERT). */
    public record CertifiedBuffers(DeviceBuffer routerBf16, DeviceBuffer routerNorm, DeviceBuffer routerF64, DeviceBuffer xSquares,
                                   DeviceBuffer fallbackTokens, DeviceBuffer fallbackCount) {}

    /** Floats of {@link CertifiedBuffers#xSquares} for launches of up to {@code tokenCapacity} tokens: splits x tokens. */
    public static long certifiedSquareFloats(int tokenCapacity, int hidden) {
        return (long) tokenCapacity * ceilDiv(hidden, 256);
    }

    /** The certified router's logits (CERT, CERTWG): fast BF16 tensor-core logits into {@code logitsBuf}, as {@link #logits}. */
    public void certifiedLogits(CudaStream s, DeviceBuffer x, CertifiedBuffers b, DeviceBuffer logitsBuf, DeviceBuffer partial,
                                DeviceBuffer numTokens, int tokenCapacity, int hidden, int nOut) {
        requireCertified();
        int splits = certifiedSplits(kernel, tokenCapacity, nOut, hidden, smCount);
        if (b.xSquares().count() < (long) splits * tokenCapacity) {
            throw new IllegalArgumentException("'" + b.xSquares().name() + "' holds " + b.xSquares().count() + " floats, "
                    + splits + " x " + tokenCapacity + " needed");
        }
        if (kernel == Kernel.CERTWG) {
            if (hidden % CERTWG_K_STAGE != 0) {
                throw new IllegalArgumentException("router kernel certwg needs a hidden size that is a multiple of " + CERTWG_K_STAGE
                        + ", got " + hidden);
            }
            logits.launch(s, new Dim(ceilDiv(nOut, CERTWG_EXPERTS), ceilDiv(tokenCapacity, CERTWG_TOKENS), splits), Dim.of(CERTWG_THREADS),
                    CERTWG_SMEM_BYTES, x, b.routerBf16(), logitsBuf, partial, b.xSquares(), b.fallbackCount(), numTokens, hidden, nOut,
                    certwgKPerSplit(hidden, splits));
        } else {
            logits.launch(s, new Dim(ceilDiv(nOut, LOGIT_TILE), ceilDiv(tokenCapacity, LOGIT_TILE), splits), Dim.of(128), CERT_SMEM_BYTES,
                    x, b.routerBf16(), logitsBuf, partial, b.xSquares(), b.fallbackCount(), numTokens, hidden, nOut, kPerSplit(hidden, splits));
        }
        if (splits > 1) {
            reduce.launch(s, Dim.of(Math.max(1, ceilDiv((long) tokenCapacity * nOut, 256))), Dim.of(256), 0, partial, logitsBuf, numTokens, nOut, splits);
        }
    }

    /**
     * The certified router's selection (CERT, CERTWG), after {@link #certifiedLogits}: top-k and weights per token with the
     * certificate; then, for the tokens it could not clear (listed in {@code b.fallbackTokens}, counted in
     * {@code b.fallbackCount}), TC2W's fp64 logits and the selection again. Other arguments as {@link #topk}.
     */
    public void certifiedTopk(CudaStream s, MoeConfig c, DeviceBuffer x, CertifiedBuffers b, DeviceBuffer logitsBuf,
                              DeviceBuffer partial, DeviceBuffer bias, DeviceBuffer topkExpert, DeviceBuffer topkWeight,
                              DeviceBuffer sharedRowWeight, DeviceBuffer numTokens, int tokenCapacity, int hidden, int nOut) {
        requireCertified();
        int splits = certifiedSplits(kernel, tokenCapacity, nOut, hidden, smCount);
        int smem = topkSmemBytes(c);
        Dim tokens = Dim.of(ceilDiv(tokenCapacity, ROUTE_WARPS));
        int gated = c.sharedExpertGated() ? 1 : 0, norm = c.normTopkProb() ? 1 : 0;
        certTopk.launch(s, tokens, Dim.of(ROUTE_WARPS * 32), smem, logitsBuf, nullable(bias), topkExpert, topkWeight, nullable(sharedRowWeight),
                b.xSquares(), b.routerNorm(), b.fallbackTokens(), b.fallbackCount(), numTokens, splits, CERT_BOUND_SCALE,
                c.numExperts(), nOut, c.topK(), scoring(c), c.nGroup(), c.topkGroup(), norm, c.routedScalingFactor(), gated);
        int fallbackSplits = Math.max(1, Math.min(CERT_FALLBACK_SPLITS, hidden / 256));
        long partialCap = partial.count();
        listLogits.launch(s, new Dim(ceilDiv(nOut, LOGIT_TILE), ceilDiv(tokenCapacity, LOGIT_TILE), fallbackSplits), Dim.of(128),
                TC2_SMEM_BYTES, x, b.routerF64(), logitsBuf, partial, b.fallbackTokens(), b.fallbackCount(), hidden, nOut, 0, partialCap);
        listReduce.launch(s, Dim.of(Math.max(1, Math.min(1024, ceilDiv((long) tokenCapacity * nOut, 256)))), Dim.of(256), 0, partial,
                logitsBuf, b.fallbackTokens(), b.fallbackCount(), nOut, hidden, fallbackSplits, partialCap);
        listTopk.launch(s, tokens, Dim.of(ROUTE_WARPS * 32), smem, logitsBuf, nullable(bias), topkExpert, topkWeight, nullable(sharedRowWeight),
                b.fallbackTokens(), b.fallbackCount(), c.numExperts(), nOut, c.topK(), scoring(c), c.nGroup(), c.topkGroup(), norm,
                c.routedScalingFactor(), gated);
    }

    private void requireCertified() {
        if (!kernel.certified()) throw new IllegalStateException("the certified router's launches need CERT or CERTWG, this launcher has " + kernel);
    }

    /** Dynamic shared memory of the top-k kernels: keys and scores (fp32) and eligibility (byte) per expert and warp. */
    private static int topkSmemBytes(MoeConfig c) { return ROUTE_WARPS * c.numExperts() * 9; }

    private static int scoring(MoeConfig c) { return c.scoring() == ScoringFunction.SIGMOID ? 1 : 0; }

    static Object nullable(DeviceBuffer b) { return b == null ? (Object) 0L : b; }

    static int ceilDiv(long a, long b) { return Math.toIntExact((a + b - 1) / b); }
}
