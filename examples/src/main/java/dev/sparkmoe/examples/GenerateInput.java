package dev.sparkmoe.examples;

import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.spark.HiddenEncoding;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Iterator;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * Writes an input dataset for the batch job: Parquet with {@code id} (long) and {@code hidden} (a row of 1..n tokens
 * of standard-normal values). Each row depends only on (seed, id), so the data is the same whatever the partitioning.
 */
@Command(name = "generate-input", mixinStandardHelpOptions = true,
        description = "Writes Parquet rows of id + random hidden states (seeded).")
public final class GenerateInput implements Callable<Integer> {
    @Mixin SparkOptions spark = new SparkOptions();

    @Option(names = "--output", required = true, description = "Parquet directory to write (replaced if present)")
    String output;

    @Option(names = "--rows", required = true, description = "number of rows")
    long rows;

    @Option(names = "--tokens-per-row", defaultValue = "1", description = "tokens per row: n, or min-max for a uniform range (default ${DEFAULT-VALUE})")
    String tokensPerRow;

    @Option(names = "--model", description = "take the hidden size from this checkpoint's config.json")
    Path model;

    @Option(names = "--hidden", description = "hidden size (when no --model)")
    Integer hidden;

    @Option(names = "--encoding", defaultValue = "array", description = "array (array<float>), fp32 or bf16 (little-endian binary) (default ${DEFAULT-VALUE})")
    String encoding;

    @Option(names = "--seed", defaultValue = "42", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--partitions", description = "output partitions (default: 2 per task slot)")
    Integer partitions;

    @Override public Integer call() throws Exception {
        if ((model == null) == (hidden == null)) throw new CommandLine.ParameterException(new CommandLine(this), "give exactly one of --model and --hidden");
        int h = model != null ? MoeConfig.read(model.resolve("config.json")).hiddenSize() : hidden;
        int[] range = parseRange(tokensPerRow);
        HiddenEncoding enc = HiddenEncoding.parse(encoding);
        if (rows < 1) throw new CommandLine.ParameterException(new CommandLine(this), "--rows must be >= 1");
        try (SparkSession s = spark.session("sparkmoe-generate-input")) {
            int parts = partitions != null ? partitions : 2 * s.sparkContext().defaultParallelism();
            StructType schema = new StructType().add("id", DataTypes.LongType, false).add(enc.field("hidden", false));
            long t0 = System.nanoTime();
            s.range(0, rows, 1, parts).as(Encoders.LONG())
                    .mapPartitions(new MakeRows(seed, h, range[0], range[1], enc), Encoders.row(schema))
                    .write().mode("overwrite").parquet(output);
            double sec = (System.nanoTime() - t0) / 1e9;
            System.out.printf("wrote %d rows (hidden %d, %s tokens per row, %s) to %s in %.1f s%n", rows, h, tokensPerRow,
                    enc.paramValue(), output, sec);
        }
        return 0;
    }

    static int[] parseRange(String s) {
        String[] p = s.split("-");
        int lo = Integer.parseInt(p[0].trim()), hi = p.length > 1 ? Integer.parseInt(p[1].trim()) : lo;
        if (p.length > 2 || lo < 1 || hi < lo) throw new IllegalArgumentException("--tokens-per-row '" + s + "' must be n or min-max with 1 <= min <= max");
        return new int[] {lo, hi};
    }

    /** One row per id: the token count and the values come from a generator seeded by (seed, id). */
    record MakeRows(long seed, int hidden, int minTokens, int maxTokens, HiddenEncoding enc) implements MapPartitionsFunction<Long, Row> {
        @Override public Iterator<Row> call(Iterator<Long> ids) {
            return new Iterator<>() {
                @Override public boolean hasNext() { return ids.hasNext(); }

                @Override public Row next() {
                    long id = ids.next();
                    SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + id);
                    int tokens = minTokens + r.nextInt(maxTokens - minTokens + 1);
                    float[] v = new float[tokens * hidden];
                    for (int i = 0; i < v.length; i += 2) {
                        double u1 = 1.0 - r.nextDouble(), u2 = r.nextDouble(), rad = Math.sqrt(-2 * Math.log(u1));
                        v[i] = (float) (rad * Math.cos(2 * Math.PI * u2));
                        if (i + 1 < v.length) v[i + 1] = (float) (rad * Math.sin(2 * Math.PI * u2));
                    }
                    return RowFactory.create(id, enc.encode(v, 0, v.length));
                }
            };
        }
    }

    public static void main(String[] args) { System.exit(new CommandLine(new GenerateInput()).execute(args)); }
}
