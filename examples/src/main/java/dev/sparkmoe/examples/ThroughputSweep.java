package dev.sparkmoe.examples;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.Precision;
import dev.sparkmoe.spark.EngineWarmup;
import dev.sparkmoe.spark.HiddenEncoding;
import dev.sparkmoe.spark.MoeLayerSpec;
import dev.sparkmoe.spark.MoeLayerTransformer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Sweeps micro-batch size x parallelism (input partitions, i.e. concurrent tasks) over a cached input and writes
 * {@code sweep.csv} and {@code sweep.png} (tokens/s against batch size, one line per parallelism). Each point is the
 * best of {@code --repeats} runs of transform + a no-op sink (Spark's "noop" format), so it measures reading the
 * cached rows, the MoE layers and Spark's row handling, not Parquet output.
 */
@Command(name = "throughput-sweep", mixinStandardHelpOptions = true,
        description = "Measures tokens/s over micro-batch sizes and parallelism; writes a CSV and a PNG chart.")
public final class ThroughputSweep implements Callable<Integer> {
    @Mixin SparkOptions spark = new SparkOptions();

    @Option(names = "--model", required = true) String model;
    @Option(names = "--layers", required = true, split = ",") int[] layers;
    @Option(names = "--input", required = true, description = "input Parquet (id + hidden)") String input;
    @Option(names = "--input-col", defaultValue = "hidden") String inputCol;
    @Option(names = "--batch-sizes", split = ",", defaultValue = "16,64,256,1024,4096", description = "tokens per micro-batch (default ${DEFAULT-VALUE})")
    int[] batchSizes;
    @Option(names = "--parallelism", split = ",", defaultValue = "1,2", description = "input partitions = concurrent tasks (default ${DEFAULT-VALUE})")
    int[] parallelism;
    @Option(names = "--device", defaultValue = "auto") String device;
    @Option(names = "--precision", defaultValue = "native") String precision;
    @Option(names = "--residual") boolean residual;
    @Option(names = "--cpu-threads", defaultValue = "0") int cpuThreads;
    @Option(names = "--repeats", defaultValue = "2", description = "runs per point; the fastest counts (default ${DEFAULT-VALUE})") int repeats;
    @Option(names = "--output-dir", required = true, description = "where sweep.csv and sweep.png go") Path outputDir;

    record Point(int parallelism, int batchSize, long rows, long tokens, double seconds) {
        double tokensPerSecond() { return tokens / seconds; }
        double rowsPerSecond() { return rows / seconds; }
    }

    @Override public Integer call() throws IOException {
        if (repeats < 1) throw new CommandLine.ParameterException(new CommandLine(this), "--repeats must be >= 1");
        MoeLayerSpec spec = new MoeLayerSpec(model, layers, Device.parse(device), Precision.parse(precision), residual, cpuThreads);
        int hidden;
        try (Checkpoint c = Checkpoint.open(Path.of(spec.modelPath()))) {
            hidden = c.config().hiddenSize();
        }
        List<Point> points = new ArrayList<>();
        try (SparkSession s = spark.session("sparkmoe-throughput-sweep")) {
            EngineWarmup.preload(s, spec).forEach(l -> System.out.println("  " + l));
            Dataset<Row> base = s.read().parquet(input).select("id", inputCol);
            HiddenEncoding enc = HiddenEncoding.inferFrom(base.schema().apply(inputCol));
            for (int p : parallelism) {
                Dataset<Row> in = base.repartition(p).cache();
                long rows = in.count();
                String size = enc == HiddenEncoding.ARRAY ? "size(`" + inputCol + "`)" : "length(`" + inputCol + "`) div " + (enc == HiddenEncoding.FP32 ? 4 : 2);
                long tokens = in.selectExpr("sum(" + size + ")").first().getLong(0) / hidden;
                for (int b : batchSizes) {
                    MoeLayerTransformer t = new MoeLayerTransformer().setModelPath(model).setLayers(layers).setResidual(residual)
                            .setBatchSize(b).setDevice(device).setPrecision(precision).setInputCol(inputCol).setCpuThreads(cpuThreads).setDropInputCol(true);
                    double best = Double.POSITIVE_INFINITY;
                    for (int r = 0; r < repeats; r++) {
                        long t0 = System.nanoTime();
                        t.transform(in).write().format("noop").mode("overwrite").save();
                        best = Math.min(best, (System.nanoTime() - t0) / 1e9);
                    }
                    Point pt = new Point(p, b, rows, tokens, best);
                    points.add(pt);
                    System.out.printf(Locale.ROOT, "parallelism %d, batch %d: %.2f s, rows/s %.1f, tokens/s %.1f%n",
                            p, b, best, pt.rowsPerSecond(), pt.tokensPerSecond());
                }
                in.unpersist();
            }
        }
        Files.createDirectories(outputDir);
        writeCsv(points, outputDir.resolve("sweep.csv"));
        writeChart(points, outputDir.resolve("sweep.png"), spec);
        System.out.println("wrote " + outputDir.resolve("sweep.csv") + " and " + outputDir.resolve("sweep.png"));
        return 0;
    }

    static void writeCsv(List<Point> points, Path file) throws IOException {
        StringBuilder sb = new StringBuilder("parallelism,batch_size,rows,tokens,seconds,rows_per_s,tokens_per_s\n");
        for (Point p : points) {
            sb.append(String.format(Locale.ROOT, "%d,%d,%d,%d,%.4f,%.1f,%.1f%n", p.parallelism(), p.batchSize(), p.rows(),
                    p.tokens(), p.seconds(), p.rowsPerSecond(), p.tokensPerSecond()));
        }
        Files.writeString(file, sb);
    }

    static void writeChart(List<Point> points, Path file, MoeLayerSpec spec) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Map<Integer, XYSeries> series = new LinkedHashMap<>();
        for (Point p : points) series.computeIfAbsent(p.parallelism(), k -> new XYSeries("parallelism " + k)).add(p.batchSize(), p.tokensPerSecond());
        XYSeriesCollection data = new XYSeriesCollection();
        series.values().forEach(data::addSeries);
        JFreeChart chart = ChartFactory.createXYLineChart("MoE layers " + java.util.Arrays.toString(spec.layers()) + " through Spark ("
                        + spec.device().name().toLowerCase() + ", " + spec.precision().name().toLowerCase() + ")",
                "micro-batch size (tokens)", "tokens/s", data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        LogAxis x = new LogAxis("micro-batch size (tokens)");
        x.setBase(2);
        x.setSmallestValue(1);
        x.setTickUnit(new org.jfree.chart.axis.NumberTickUnit(1)); // one tick per power of two, labelled as a count
        x.setNumberFormatOverride(new java.text.DecimalFormat("0"));
        plot.setDomainAxis(x);
        plot.setRenderer(new XYLineAndShapeRenderer(true, true));
        ChartUtils.saveChartAsPNG(file.toFile(), chart, 900, 560);
    }

    public static void main(String[] args) { System.exit(new CommandLine(new ThroughputSweep()).execute(args)); }
}
