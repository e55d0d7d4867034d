package dev.sparkmoe.checkpoint;

/**
 * A 2-D weight [rows, cols] as stored, with DeepSeek FP8 block scales when present: the real value of element
 * (r, c) is {@code weight[r, c] * scaleInv[r / blockRows, c / blockCols]} ({@code scaleInv} is F32,
 * [ceil(rows/blockRows), ceil(cols/blockCols)]).
 */
public final class WeightMatrix {
    private final Tensor weight;
    private final Tensor scaleInv;
    private final int rows;
    private final int cols;
    private final int blockRows;
    private final int blockCols;

    private WeightMatrix(Tensor weight, Tensor scaleInv, int blockRows, int blockCols) {
        this.weight = weight;
        this.scaleInv = scaleInv;
        this.rows = (int) weight.dim(0);
        this.cols = (int) weight.dim(1);
        this.blockRows = blockRows;
        this.blockCols = blockCols;
    }

    /**
     * Loads {@code name} from the checkpoint, checking its shape, and its {@code name_scale_inv} when it is F8_E4M3.
     *
     * @param block the FP8 [rows, cols] block of the config, or null
     */
    public static WeightMatrix load(Checkpoint ckpt, String name, int rows, int cols, int[] block) {
        Tensor w = ckpt.tensor(name).requireShape(rows, cols);
        // The config says how the weights are stored; a checkpoint that disagrees is corrupt or mislabelled.
        if (block != null && w.dtype() != DType.F8_E4M3) {
            throw new CheckpointException("tensor '" + name + "' has dtype " + w.dtype() + " but config.json declares an FP8 checkpoint"
                    + " (quantization_config fp8, weight_block_size " + block[0] + "x" + block[1] + "): expert weights must be F8_E4M3");
        }
        if (block == null && w.dtype() == DType.F8_E4M3) {
            throw new CheckpointException("tensor '" + name + "' is F8_E4M3 but config.json has no quantization_config"
                    + " (quant_method fp8, weight_block_size) saying how its _scale_inv blocks are laid out");
        }
        if (w.dtype() != DType.F8_E4M3) return new WeightMatrix(w, null, 0, 0);
        int br = block[0], bc = block[1];
        String sname = scaleName(name);
        if (!ckpt.contains(sname)) throw new CheckpointException("FP8 tensor '" + name + "' has no block scale tensor '" + sname + "'");
        Tensor s = ckpt.tensor(sname).requireDType(DType.F32).requireShape(ceilDiv(rows, br), ceilDiv(cols, bc));
        return new WeightMatrix(w, s, br, bc);
    }

    /** Wraps tensors already at hand (tests, writers). */
    public static WeightMatrix of(Tensor weight, Tensor scaleInv, int blockRows, int blockCols) {
        if (weight.rank() != 2) throw new CheckpointException("weight '" + weight.name() + "' must be 2-D");
        return new WeightMatrix(weight, scaleInv, blockRows, blockCols);
    }

    /** The scale tensor's name for an FP8 weight: {@code <weight>_scale_inv} (DeepSeek's convention). */
    public static String scaleName(String weightName) { return weightName + "_scale_inv"; }

    public static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    public String name() { return weight.name(); }
    public int rows() { return rows; }
    public int cols() { return cols; }
    public DType dtype() { return weight.dtype(); }
    public Tensor weight() { return weight; }
    /** F32 block scales for F8_E4M3 weights, else null. */
    public Tensor scaleInv() { return scaleInv; }
    public int blockRows() { return blockRows; }
    public int blockCols() { return blockCols; }
    public boolean isBlockScaled() { return scaleInv != null; }

    /** Row {@code r}, dequantized to float32, into {@code dst[0..cols)}. */
    public void rowToFloats(int r, float[] dst) {
        weight.toFloats((long) r * cols, dst, 0, cols);
        if (scaleInv != null) {
            int sCols = ceilDiv(cols, blockCols);
            long sRow = (long) (r / blockRows) * sCols;
            for (int b = 0; b < sCols; b++) {
                float s = scaleInv.get(sRow + b);
                int end = Math.min(cols, (b + 1) * blockCols);
                for (int c = b * blockCols; c < end; c++) dst[c] *= s;
            }
        }
    }

    /** The whole matrix dequantized to float32, row-major [rows, cols]. */
    public float[] toFloats() {
        float[] out = new float[Math.multiplyExact(rows, cols)];
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            rowToFloats(r, row);
            System.arraycopy(row, 0, out, r * cols, cols);
        }
        return out;
    }
}
