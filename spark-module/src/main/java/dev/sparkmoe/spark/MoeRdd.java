package dev.sparkmoe.spark;

import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction;

import java.util.Iterator;

/** The RDD form of {@link MoeLayerTransformer}, for pipelines that hold hidden states as {@link HiddenRow}s. */
public final class MoeRdd {
    private MoeRdd() {}

    public static JavaRDD<HiddenRow> apply(JavaRDD<HiddenRow> rows, MoeLayerSpec spec, int batchTokens, BadRowPolicy policy) {
        return rows.mapPartitions(new Apply(spec, batchTokens, policy), true);
    }

    private record Apply(MoeLayerSpec spec, int batchTokens, BadRowPolicy policy) implements FlatMapFunction<Iterator<HiddenRow>, HiddenRow> {
        @Override public Iterator<HiddenRow> call(Iterator<HiddenRow> it) {
            TaskContext tc = TaskContext.get();
            return new MicroBatchIterator<>(it, new Codec(), HiddenEncoding.ARRAY, HiddenEncoding.ARRAY,
                    () -> LayerStack.open(spec), batchTokens, policy, tc == null ? -1 : tc.partitionId());
        }
    }

    private record Codec() implements MicroBatchIterator.RowCodec<HiddenRow, HiddenRow> {
        @Override public Object hiddenCell(HiddenRow row) { return row.hidden(); }

        @Override public String describe(HiddenRow row, long index, int partition) {
            return "row " + index + " of partition " + partition + " (id=" + row.id() + ")";
        }

        @Override public HiddenRow result(HiddenRow row, Object outCell, String error) {
            float[] out = outCell == null ? null : (float[]) ((scala.collection.immutable.ArraySeq.ofFloat) outCell).unsafeArray();
            return new HiddenRow(row.id(), out, error);
        }
    }
}
