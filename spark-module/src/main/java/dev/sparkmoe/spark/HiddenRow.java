package dev.sparkmoe.spark;

import java.io.Serializable;

/**
 * A row of the RDD API: an id and its hidden state (row-major [tokens, H] fp32). {@code error} is set, and
 * {@code hidden} null, for a bad row under {@link BadRowPolicy#NULL}.
 */
public record HiddenRow(long id, float[] hidden, String error) implements Serializable {
    public HiddenRow(long id, float[] hidden) { this(id, hidden, null); }
}
