package dev.sparkmoe.checkpoint;

/** Tensor element types of safetensors files that this library reads and writes. */
public enum DType {
    F32(4), BF16(2), F16(2), F8_E4M3(1);

    private final int bytes;

    DType(int bytes) { this.bytes = bytes; }

    public int bytes() { return bytes; }

    /** The safetensors header spelling. */
    public String safetensorsName() { return name(); }

    public static DType fromSafetensorsName(String name, String tensor) {
        for (DType d : values()) if (d.name().equals(name)) return d;
        throw new CheckpointException("tensor '" + tensor + "' has dtype '" + name
                + "', which is not supported (F32, BF16, F16, F8_E4M3)");
    }

    /** Parses a user-facing name: f32, bf16, f16, fp8. */
    public static DType fromUserName(String name) {
        return switch (name.toLowerCase()) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "f16", "fp16", "float16" -> F16;
            case "fp8", "f8", "f8_e4m3", "e4m3" -> F8_E4M3;
            default -> throw new CheckpointException("dtype '" + name + "' is not one of f32, bf16, f16, fp8");
        };
    }
}
