package dev.sparkmoe.spark;

import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;

/**
 * Runs a partition's rows through a {@link LayerStack} in micro-batches: rows are gathered, in order, until the batch
 * holds at least {@code batchTokens} tokens (a row is never split, so one long row may make a bigger batch), the
 * batch runs as one forward, and each input row yields exactly one output row, in input order. Forward passes run on
 * a helper thread: the task decodes and queues its next batch before it encodes the current one's rows, so at most two
 * batches are in flight and Spark's row handling overlaps the device. The engines are acquired on the first row, so an empty
 * partition loads nothing.
 *
 * @param <I> input row type
 * @param <O> output row type
 */
public final class MicroBatchIterator<I, O> implements Iterator<O> {
    /** How to read the hidden-state cell of a row, name the row in errors, and build the output row. */
    public interface RowCodec<I, O> extends Serializable {
        Object hiddenCell(I row);

        /** E.g. "row 17 of partition 3 (id=42)"; {@code index} counts rows from 0 within the partition. */
        String describe(I row, long index, int partition);

        /** The output row: the input row plus {@code outCell} (null for a bad row) and {@code error} (null when fine). */
        O result(I row, Object outCell, String error);
    }

    /** Forward passes run here so that a task decodes its next micro-batch while the current one computes. */
    private static final ExecutorService FORWARD_POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "sparkmoe-forward");
        t.setDaemon(true);
        return t;
    });

    private final Iterator<I> in;
    private final RowCodec<I, O> codec;
    private final HiddenEncoding inEnc;
    private final HiddenEncoding outEnc;
    private final Supplier<LayerStack> stackSupplier;
    private final int batchTokens;
    private final BadRowPolicy policy;
    private final int partition;
    private final ArrayDeque<O> ready = new ArrayDeque<>();

    private LayerStack stack;
    private long rowIndex;
    private Batch<I> inFlight;
    /** Two host buffer pairs: one batch computes while the next is decoded into the other pair. */
    private final ArrayDeque<float[][]> freeBuffers = new ArrayDeque<>();

    /** Gathered rows, their value counts (-1 for a bad row) and errors, and the running forward pass over the good ones. */
    private static final class Batch<I> {
        final List<I> rows = new ArrayList<>();
        final List<Object> cells = new ArrayList<>();
        int[] counts = new int[16];
        final List<String> errors = new ArrayList<>();
        int tokens;
        float[][] buffers; // {x, y}
        Future<?> out;

        void add(I row, Object cell, int count, String error) {
            if (rows.size() == counts.length) counts = java.util.Arrays.copyOf(counts, counts.length * 2);
            counts[rows.size()] = count;
            rows.add(row);
            cells.add(cell);
            errors.add(error);
        }
    }

    public MicroBatchIterator(Iterator<I> in, RowCodec<I, O> codec, HiddenEncoding inEnc, HiddenEncoding outEnc,
                              Supplier<LayerStack> stackSupplier, int batchTokens, BadRowPolicy policy, int partition) {
        if (batchTokens < 1) throw new MoeSparkException("batchSize must be >= 1 token, got " + batchTokens);
        this.in = in;
        this.codec = codec;
        this.inEnc = inEnc;
        this.outEnc = outEnc;
        this.stackSupplier = stackSupplier;
        this.batchTokens = batchTokens;
        this.policy = policy;
        this.partition = partition;
    }

    @Override public boolean hasNext() {
        while (ready.isEmpty()) {
            if (inFlight == null) {
                if (!in.hasNext()) return false;
                inFlight = launch(gather());
            }
            // the next batch is decoded and queued on the engine before this one's rows are encoded, so the device
            // has this task's next batch while the task thread encodes and Spark writes the current one
            Batch<I> next = in.hasNext() ? launch(gather()) : null;
            emit(inFlight);
            inFlight = next;
        }
        return true;
    }

    @Override public O next() {
        if (!hasNext()) throw new NoSuchElementException();
        return ready.poll();
    }

    /** Rows in order until the batch holds batchTokens tokens; widths are checked here, values decoded in launch. */
    private Batch<I> gather() {
        if (stack == null) stack = stackSupplier.get(); // on the task thread: placement reads the task's resources
        int h = stack.hiddenSize();
        Batch<I> b = new Batch<>();
        while (b.tokens < batchTokens && in.hasNext()) {
            I row = in.next();
            long index = rowIndex++;
            Object cell = codec.hiddenCell(row);
            int count = -1;
            String error = null;
            try {
                count = inEnc.valueCount(cell);
                checkWidth(count, h);
            } catch (HiddenEncoding.BadValueException e) {
                error = badRow(row, index, e);
                count = -1;
            }
            b.add(row, cell, count, error);
            if (count > 0) b.tokens = Math.addExact(b.tokens, count / h);
        }
        return b;
    }

    /** {@code e}'s message for a kept bad row (onBadRow=null), or the task-failing error (onBadRow=error). */
    private String badRow(I row, long index, HiddenEncoding.BadValueException e) {
        if (policy == BadRowPolicy.ERROR) {
            throw new MoeSparkException("bad row: " + codec.describe(row, index, partition) + ": " + e.getMessage()
                    + " (onBadRow=error; onBadRow=null keeps the row with a null output and the reason)");
        }
        return e.getMessage();
    }

    /** Decodes the good rows straight into the batch input and queues the forward pass. */
    private Batch<I> launch(Batch<I> b) {
        long t0 = System.nanoTime();
        int h = stack.hiddenSize();
        long firstIndex = rowIndex - b.rows.size();
        b.buffers = buffers(Math.multiplyExact(b.tokens, h));
        float[] x = b.buffers[0], y = b.buffers[1];
        int off = 0;
        for (int i = 0; i < b.rows.size(); i++) {
            if (b.counts[i] < 0) continue;
            try {
                int n = inEnc.decodeInto(b.cells.get(i), x, off);
                checkFinite(x, off, n, h);
                off += n;
            } catch (HiddenEncoding.BadValueException e) {
                b.errors.set(i, badRow(b.rows.get(i), firstIndex + i, e));
                b.counts[i] = -1;
            }
            b.cells.set(i, null); // the row still holds it; the batch no longer needs it
        }
        LayerStack s = stack;
        int tokens = off / h;
        b.tokens = tokens;
        b.out = FORWARD_POOL.submit(() -> {
            long f0 = System.nanoTime();
            if (tokens > 0) s.forward(x, tokens, y);
            MicroBatchStats.FORWARD_NANOS.add(System.nanoTime() - f0);
        });
        MicroBatchStats.BATCHES.increment();
        MicroBatchStats.TOKENS.add(tokens);
        MicroBatchStats.DECODE_NANOS.add(System.nanoTime() - t0);
        return b;
    }

    /** A free {x, y} pair of at least {@code n} values (reused across batches: no large allocation per batch). */
    private float[][] buffers(int n) {
        float[][] p = freeBuffers.poll();
        if (p == null || p[0].length < n) p = new float[][] {new float[n], new float[n]};
        return p;
    }

    private void emit(Batch<I> b) {
        long t0 = System.nanoTime();
        try {
            b.out.get();
        } catch (InterruptedException e) {
            b.out.cancel(true);
            Thread.currentThread().interrupt();
            throw new MoeSparkException("interrupted while a micro-batch was running", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) throw r;
            if (c instanceof Error err) throw err;
            throw new MoeSparkException("micro-batch failed: " + c, c);
        }
        long t1 = System.nanoTime();
        MicroBatchStats.WAIT_NANOS.add(t1 - t0);
        float[] y = b.buffers[1];
        int off = 0;
        for (int i = 0; i < b.rows.size(); i++) {
            int n = b.counts[i];
            if (n < 0) {
                ready.add(codec.result(b.rows.get(i), null, b.errors.get(i)));
            } else {
                ready.add(codec.result(b.rows.get(i), outEnc.encode(y, off, n), null));
                off += n;
            }
        }
        freeBuffers.add(b.buffers);
        b.buffers = null;
        MicroBatchStats.ENCODE_NANOS.add(System.nanoTime() - t1);
    }

    /** Width, checked per row so the error can name the row (the engine would only name a batch token). */
    static void checkWidth(int values, int h) {
        if (values == 0 || values % h != 0) {
            throw new HiddenEncoding.BadValueException("hidden state holds " + values
                    + " values, not a positive multiple of the model's hidden size " + h);
        }
    }

    /** Finiteness of one row's values {@code v[off, off+n)}, named by token and channel within the row. */
    static void checkFinite(float[] v, int off, int n, int h) {
        for (int k = 0; k < n; k++) {
            if (!Float.isFinite(v[off + k])) {
                throw new HiddenEncoding.BadValueException("token " + (k / h) + " channel " + (k % h) + " is " + v[off + k]
                        + " (inputs must be finite)");
            }
        }
    }
}
