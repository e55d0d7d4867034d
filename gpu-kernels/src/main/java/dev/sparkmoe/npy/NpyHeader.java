package dev.sparkmoe.npy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The header of a {@code .npy} file (NumPy format versions 1.0, 2.0 and 3.0): the magic {@code \x93NUMPY}, the
 * version, the header length (u16 in 1.0, u32 in 2.0 and 3.0), and a Python dict literal
 * {@code {'descr': '<f4', 'fortran_order': False, 'shape': (T, H), }} (latin-1 in 1.0 and 2.0, UTF-8 in 3.0) padded
 * with spaces and a newline so the data starts at a multiple of 64 bytes.
 *
 * @param dtype        element type
 * @param fortranOrder true when the data is column-major (only read for arrays of rank 0 or 1, where it is moot)
 * @param shape        dimensions
 * @param majorVersion format version, 1 to 3
 * @param dataOffset   where the data starts in the file
 */
public record NpyHeader(NpyDType dtype, boolean fortranOrder, long[] shape, int majorVersion, long dataOffset) {
    static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** NumPy aligns the data to 64 bytes since version 1.16 (16 before); readers must not rely on it. */
    static final int ALIGN = 64;
    /** Bytes before the header text: magic, version, and a u16 (1.0) or u32 (2.0, 3.0) length. */
    static int preambleBytes(int major) { return MAGIC.length + 2 + (major == 1 ? 2 : 4); }
    private static final Set<String> KEYS = Set.of("descr", "fortran_order", "shape");
    /** Larger header texts are refused as corrupt (NumPy itself caps them at 10 000 bytes by default). */
    static final long MAX_HEADER_BYTES = 1 << 20;

    public NpyHeader {
        shape = shape.clone();
        for (long d : shape) if (d < 0) throw new NpyException("shape " + Arrays.toString(shape) + " has a negative dimension");
        numel(shape);
    }

    @Override public long[] shape() { return shape.clone(); }

    public int rank() { return shape.length; }

    public long numel() { return numel(shape); }

    public long dataBytes() {
        try {
            return Math.multiplyExact(numel(), dtype.itemSize());
        } catch (ArithmeticException e) {
            throw new NpyException("shape " + Arrays.toString(shape) + " of " + dtype.descr() + " is too large");
        }
    }

    static long numel(long[] shape) {
        long n = 1;
        try {
            for (long d : shape) n = Math.multiplyExact(n, d);
        } catch (ArithmeticException e) {
            throw new NpyException("shape " + Arrays.toString(shape) + " has more than 2^63 elements");
        }
        return n;
    }

    /** Parses the header text (the dict literal) of a file of the given version. */
    static NpyHeader parse(String text, int major, long dataOffset) {
        Object v = PyLiteral.parse(text);
        if (!(v instanceof Map<?, ?> d)) throw new NpyException("bad .npy header: not a dict: " + text.strip());
        if (!d.keySet().equals(KEYS)) {
            throw new NpyException("bad .npy header: keys must be exactly " + KEYS + ", got " + d.keySet());
        }
        Object descr = d.get("descr");
        if (!(descr instanceof String ds)) {
            throw new NpyException("dtype " + descr + " is a structured dtype; only plain numeric arrays are supported");
        }
        NpyDType dtype = NpyDType.fromDescr(ds);
        if (!(d.get("fortran_order") instanceof Boolean fortran)) {
            throw new NpyException("bad .npy header: fortran_order must be True or False, got " + d.get("fortran_order"));
        }
        if (!(d.get("shape") instanceof List<?> dims)) {
            throw new NpyException("bad .npy header: shape must be a tuple, got " + d.get("shape"));
        }
        long[] shape = new long[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!(dims.get(i) instanceof Long n) || n < 0) throw new NpyException("bad .npy header: shape " + dims + " must hold non-negative integers");
            shape[i] = n;
        }
        if (fortran && shape.length > 1) {
            throw new NpyException("array is in Fortran (column-major) order; only C order is supported"
                    + " (save np.ascontiguousarray(x) instead)");
        }
        return new NpyHeader(dtype, fortran, shape, major, dataOffset);
    }

    /** The Python dict literal NumPy writes for this array (without padding). */
    String dictLiteral() {
        StringBuilder b = new StringBuilder("{'descr': '").append(dtype.descr()).append("', 'fortran_order': ")
                .append(fortranOrder ? "True" : "False").append(", 'shape': (");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) b.append(", ");
            b.append(shape[i]);
        }
        if (shape.length == 1) b.append(',');
        return b.append("), }").toString();
    }

    /**
     * The complete preamble (magic to the newline) for C-order data of this dtype and shape, byte for byte as NumPy's
     * {@code format.write_array} writes it: the dict, spare spaces so the first dimension can grow to 21 digits in
     * place, then 1 to 64 spaces and a newline ending the preamble at a multiple of 64. Version 1.0 when the header
     * length fits 16 bits, else 2.0 ({@code minMajor} asks for a later version, as NumPy's {@code version=} does).
     */
    static byte[] encode(NpyDType dtype, long[] shape, int minMajor) {
        if (minMajor < 1 || minMajor > 3) throw new NpyException("format version " + minMajor + " does not exist (1, 2 or 3)");
        StringBuilder dict = new StringBuilder(new NpyHeader(dtype, false, shape, 1, 0).dictLiteral());
        if (shape.length > 0) dict.append(" ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - Long.toString(shape[0]).length())));
        byte[] text = dict.toString().getBytes(minMajor == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        int major = minMajor;
        if (major == 1 && headerFieldLength(text.length, 1) > 0xFFFF) major = 2;
        int pre = preambleBytes(major);
        int field = headerFieldLength(text.length, major);
        ByteBuffer b = ByteBuffer.allocate(pre + field).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).put((byte) major).put((byte) 0);
        if (major == 1) b.putShort((short) field); else b.putInt(field);
        b.put(text);
        for (int i = text.length; i < field - 1; i++) b.put((byte) ' ');
        b.put((byte) '\n');
        return b.array();
    }

    /** NumPy leaves room for the growing axis to reach this many digits. */
    private static final int GROWTH_AXIS_MAX_DIGITS = 21;

    /** The header field: text, newline, and NumPy's 1..64 padding spaces (64, not 0, when already aligned). */
    private static int headerFieldLength(int textLength, int major) {
        int withNewline = textLength + 1;
        int pad = ALIGN - ((preambleBytes(major) + withNewline) % ALIGN);
        return withNewline + pad;
    }

    @Override public boolean equals(Object o) {
        return o instanceof NpyHeader h && h.dtype == dtype && h.fortranOrder == fortranOrder && Arrays.equals(h.shape, shape)
                && h.majorVersion == majorVersion && h.dataOffset == dataOffset;
    }

    @Override public int hashCode() { return Arrays.hashCode(shape) * 31 + dtype.hashCode(); }

    @Override public String toString() {
        return "npy v" + majorVersion + ".0 " + dtype.descr() + Arrays.toString(shape) + (fortranOrder ? " F-order" : "");
    }
}
