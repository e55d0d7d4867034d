package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.Floats;
import dev.sparkmoe.npy.NpyDType;
import dev.sparkmoe.npy.NpyFile;
import dev.sparkmoe.npy.NpyWriter;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Hidden states {@code [tokens, hidden]} as {@code .npy}: float32 ({@code '<f4'}), or bfloat16 stored as its raw bits
 * in uint16 ({@code '<u2'}; NumPy has no bfloat16 type, so {@code x_bf16.view(np.uint16)} is the portable spelling),
 * C order.
 */
final class HiddenStatesNpy {
    private HiddenStatesNpy() {}

    /** A batch of hidden states, row-major. */
    record Batch(float[] values, int tokens, NpyDType storedAs) {}

    static Batch read(Path file, int hidden) {
        try (NpyFile f = NpyFile.open(file)) {
            long[] shape = f.shape();
            if (shape.length != 2) {
                throw new CliException("input " + file + " has shape " + Arrays.toString(shape) + " (rank " + shape.length
                        + "); expected [tokens, " + hidden + "]");
            }
            if (shape[1] != hidden) {
                throw new CliException("input " + file + " has width " + shape[1] + " (shape " + Arrays.toString(shape)
                        + ") but the model's hidden size is " + hidden);
            }
            if (shape[0] * hidden > Integer.MAX_VALUE - 8) {
                throw new CliException("input " + file + " holds " + shape[0] + " tokens, too many for one batch; split it");
            }
            return switch (f.dtype()) {
                case FLOAT32 -> new Batch(f.readFloat32(), (int) shape[0], NpyDType.FLOAT32);
                case UINT16 -> {
                    short[] bits = f.readUint16();
                    float[] v = new float[bits.length];
                    for (int i = 0; i < v.length; i++) v[i] = Floats.bf16ToFloat(bits[i]);
                    yield new Batch(v, (int) shape[0], NpyDType.UINT16);
                }
                default -> throw new CliException("input " + file + " holds '" + f.dtype().descr()
                        + "'; expected float32 ('<f4') or bfloat16 bits as uint16 ('<u2'), e.g. x.astype(np.float32)");
            };
        }
    }

    /** Writes {@code tokens} rows of N(0, std²) values, float32 or (when {@code bf16}) bfloat16 bits as uint16. */
    static void writeRandom(Path file, int tokens, int hidden, boolean bf16, long seed, double std) {
        if (tokens < 0) throw new CliException("token count must be >= 0, got " + tokens);
        long n = (long) tokens * hidden;
        if (n > Integer.MAX_VALUE - 8) throw new CliException(tokens + " tokens of width " + hidden + " are too many for one file");
        SplittableRandom r = new SplittableRandom(seed);
        long[] shape = {tokens, hidden};
        if (bf16) {
            short[] bits = new short[(int) n];
            for (int i = 0; i < bits.length; i++) bits[i] = Floats.floatToBf16((float) (r.nextGaussian() * std));
            NpyWriter.writeUint16(file, shape, bits);
        } else {
            float[] v = new float[(int) n];
            for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * std);
            NpyWriter.writeFloat32(file, shape, v);
        }
    }
}
