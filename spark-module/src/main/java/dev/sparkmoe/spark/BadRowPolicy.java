package dev.sparkmoe.spark;

import java.util.Locale;

/**
 * What happens to a row whose hidden state cannot be run (null, null element, width not a positive multiple of the
 * hidden size, NaN or infinity, undecodable binary). Never a silent drop: every input row gives one output row or
 * the job fails naming the row.
 */
public enum BadRowPolicy {
    /** The task fails with a {@link MoeSparkException} naming the row (partition, index in partition, id) and the cause. */
    ERROR,
    /** The row is kept: its output is null and the error column says why; good rows of the batch run normally. */
    NULL;

    public String paramValue() { return name().toLowerCase(Locale.ROOT); }

    public static BadRowPolicy parse(String s) {
        for (BadRowPolicy p : values()) if (p.paramValue().equalsIgnoreCase(s)) return p;
        throw new MoeSparkException("onBadRow '" + s + "' is not one of error, null");
    }
}
