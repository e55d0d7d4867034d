package dev.sparkmoe.gpu;

import dev.sparkmoe.engine.MoeEngineException;

/**
 * Token-count buckets of the GPU engine: one CUDA graph is captured per bucket (the kernels read the real token count
 * from device memory, so any count up to the bucket replays the same graph). Buckets are powers of two from
 * {@link #MIN_BUCKET} up to the engine's largest launch; a larger call is split into launches of that size.
 */
public final class TokenBuckets {
    /** The smallest bucket: below it graphs differ by nothing but idle CTAs. */
    public static final int MIN_BUCKET = 16;
    /** Default largest tokens per launch (a larger forward() runs in several launches). */
    public static final int DEFAULT_MAX_TOKENS = 32768;

    private TokenBuckets() {}

    /** The bucket of a launch of {@code tokens} (1..maxTokens): the smallest power of two >= tokens, at least MIN_BUCKET. */
    public static int bucket(int tokens, int maxTokens) {
        if (maxTokens < 1 || Integer.bitCount(maxTokens) != 1) {
            throw new MoeEngineException("largest GPU launch must be a positive power of two, got " + maxTokens);
        }
        if (tokens < 1 || tokens > maxTokens) {
            throw new MoeEngineException("a GPU launch takes 1.." + maxTokens + " tokens, got " + tokens);
        }
        int b = Integer.highestOneBit(tokens);
        if (b < tokens) b <<= 1;
        return Math.min(maxTokens, Math.max(MIN_BUCKET, b));
    }

    /** Tokens of launch {@code i} when {@code tokens} are split into launches of at most {@code maxTokens}. */
    public static int launchTokens(int tokens, int maxTokens, int i) {
        int n = launches(tokens, maxTokens);
        if (i < 0 || i >= n) throw new MoeEngineException("launch " + i + " of " + n);
        return Math.min(maxTokens, tokens - i * maxTokens);
    }

    /** Launches needed for {@code tokens} (0 for none). */
    public static int launches(int tokens, int maxTokens) {
        return (int) (((long) tokens + maxTokens - 1) / maxTokens);
    }
}
