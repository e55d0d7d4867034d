package dev.sparkmoe.npy;

import java.util.Arrays;

/**
 * Element types of {@code .npy} files this package reads and writes: little-endian only, as NumPy spells them in the
 * header's {@code descr} ({@code '<f4'}; one-byte types use {@code '|'}, which NumPy writes for them).
 */
public enum NpyDType {
    FLOAT32("f4", 4),
    FLOAT64("f8", 8),
    FLOAT16("f2", 2),
    UINT16("u2", 2),
    UINT8("u1", 1),
    INT8("i1", 1),
    INT32("i4", 4),
    INT64("i8", 8);

    private final String kindAndSize;
    private final int itemSize;

    NpyDType(String kindAndSize, int itemSize) {
        this.kindAndSize = kindAndSize;
        this.itemSize = itemSize;
    }

    public int itemSize() { return itemSize; }

    /** The header spelling NumPy writes: {@code '<f4'}, {@code '|u1'}. */
    public String descr() { return (itemSize == 1 ? "|" : "<") + kindAndSize; }

    /**
     * Parses a {@code descr} string. Byte order {@code '<'} and {@code '|'} are accepted (and {@code '>'} or
     * {@code '='} for one-byte types, where order is moot); big-endian multi-byte types are refused.
     */
    public static NpyDType fromDescr(String descr) {
        if (descr == null || descr.length() < 2) throw new NpyException("dtype descr '" + descr + "' is not a simple NumPy type string");
        char order = descr.charAt(0);
        String rest = descr.substring(1);
        NpyDType found = null;
        for (NpyDType d : values()) if (d.kindAndSize.equals(rest)) found = d;
        if (found == null) {
            throw new NpyException("dtype '" + descr + "' is not supported; supported: "
                    + Arrays.stream(values()).map(NpyDType::descr).toList());
        }
        boolean oneByte = found.itemSize == 1;
        boolean ok = switch (order) {
            case '<' -> true;
            case '|', '>', '=' -> oneByte;
            default -> false;
        };
        if (!ok) {
            throw new NpyException("dtype '" + descr + "' is not little-endian; only little-endian .npy files are supported"
                    + " (convert with x.astype('" + found.descr() + "'))");
        }
        return found;
    }
}
