package dev.sparkmoe.spark;

import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.Precision;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntArrayParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

/**
 * A spark.ml {@link Transformer} that applies one or more MoE layers of a checkpoint to a hidden-state column.
 * Every input row gives exactly one output row with all input columns kept and {@code outputCol} added. Rows are
 * gathered per partition into micro-batches of {@code batchSize} tokens; each executor loads the weights once from
 * {@code modelPath} (see {@link EngineRegistry}) on the device Spark gave it (see {@link ExecutorDevices}).
 * Persistable with {@code write().save(path)} / {@link #load(String)}.
 */
public final class MoeLayerTransformer extends Transformer implements DefaultParamsWritable {
    private static final long serialVersionUID = 1L;

    private final String uid;
    private Param<String> modelPath;
    private IntArrayParam layers;
    private Param<String> inputCol;
    private Param<String> outputCol;
    private IntParam batchSize;
    private Param<String> device;
    private Param<String> precision;
    private BooleanParam residual;
    private Param<String> inputEncoding;
    private Param<String> outputEncoding;
    private Param<String> onBadRow;
    private Param<String> errorCol;
    private Param<String> idCol;
    private IntParam cpuThreads;
    private BooleanParam dropInputCol;

    public MoeLayerTransformer() { this(Identifiable$.MODULE$.randomUID("moeLayer")); }

    public MoeLayerTransformer(String uid) {
        this.uid = uid;
        // Params need this.uid, so they are built here rather than in field initializers.
        modelPath = new Param<>(this, "modelPath", "checkpoint directory (Hugging Face layout) readable by every executor");
        layers = new IntArrayParam(this, "layers", "MoE layer indices, applied in this order", nonEmpty());
        inputCol = new Param<>(this, "inputCol", "hidden-state column: array<float> or binary, a positive multiple of hidden_size values");
        outputCol = new Param<>(this, "outputCol", "column added for the result (must not exist yet)");
        batchSize = new IntParam(this, "batchSize", "tokens per micro-batch (rows are gathered until at least this many tokens)", ParamValidators.gtEq(1));
        device = new Param<>(this, "device", "auto (the GPU Spark assigned, else local-mode GPU 0, else CPU), cpu, gpu",
                ParamValidators.inArray(new String[] {"auto", "cpu", "gpu"}));
        precision = new Param<>(this, "precision", "native or fp8", ParamValidators.inArray(new String[] {"native", "fp8"}));
        residual = new BooleanParam(this, "residual", "apply x + moe(x) per layer instead of moe(x)");
        inputEncoding = new Param<>(this, "inputEncoding", "auto (the column's sparkmoe.encoding metadata, else array<float> -> array, binary -> fp32), array, fp32, bf16",
                ParamValidators.inArray(new String[] {"auto", "array", "fp32", "bf16"}));
        outputEncoding = new Param<>(this, "outputEncoding", "same (as the input), array, fp32, bf16",
                ParamValidators.inArray(new String[] {"same", "array", "fp32", "bf16"}));
        onBadRow = new Param<>(this, "onBadRow", "error: fail naming the row; null: null output plus the reason in errorCol",
                ParamValidators.inArray(new String[] {"error", "null"}));
        errorCol = new Param<>(this, "errorCol", "with onBadRow=null: the string column for the reason (empty = outputCol + '_error')");
        idCol = new Param<>(this, "idCol", "column whose value names a bad row in errors, when the dataset has it");
        cpuThreads = new IntParam(this, "cpuThreads", "CPU engine threads per executor (0 = all processors)", ParamValidators.gtEq(0));
        dropInputCol = new BooleanParam(this, "dropInputCol", "leave the input hidden-state column out of the output (saves copying it)");
        setDefault(dropInputCol, false);
        setDefault(inputCol, "hidden");
        setDefault(outputCol, "moe_out");
        setDefault(batchSize, 1024);
        setDefault(device, "auto");
        setDefault(precision, "native");
        setDefault(residual, false);
        setDefault(inputEncoding, "auto");
        setDefault(outputEncoding, "same");
        setDefault(onBadRow, "error");
        setDefault(errorCol, "");
        setDefault(idCol, "id");
        setDefault(cpuThreads, 0);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static scala.Function1<int[], Object> nonEmpty() { return (scala.Function1) ParamValidators.arrayLengthGt(0); }

    @Override public String uid() { return uid; }

    // Param accessors: spark.ml discovers params through these public no-argument methods.
    public Param<String> modelPath() { return modelPath; }
    public IntArrayParam layers() { return layers; }
    public Param<String> inputCol() { return inputCol; }
    public Param<String> outputCol() { return outputCol; }
    public IntParam batchSize() { return batchSize; }
    public Param<String> device() { return device; }
    public Param<String> precision() { return precision; }
    public BooleanParam residual() { return residual; }
    public Param<String> inputEncoding() { return inputEncoding; }
    public Param<String> outputEncoding() { return outputEncoding; }
    public Param<String> onBadRow() { return onBadRow; }
    public Param<String> errorCol() { return errorCol; }
    public Param<String> idCol() { return idCol; }
    public IntParam cpuThreads() { return cpuThreads; }
    public BooleanParam dropInputCol() { return dropInputCol; }

    public MoeLayerTransformer setModelPath(String v) { set(modelPath, v); return this; }
    public MoeLayerTransformer setLayers(int... v) { set(layers, v.clone()); return this; }
    public MoeLayerTransformer setInputCol(String v) { set(inputCol, v); return this; }
    public MoeLayerTransformer setOutputCol(String v) { set(outputCol, v); return this; }
    public MoeLayerTransformer setBatchSize(int v) { set(batchSize, v); return this; }
    public MoeLayerTransformer setDevice(String v) { set(device, v.toLowerCase()); return this; }
    public MoeLayerTransformer setPrecision(String v) { set(precision, v.toLowerCase()); return this; }
    public MoeLayerTransformer setResidual(boolean v) { set(residual, v); return this; }
    public MoeLayerTransformer setInputEncoding(String v) { set(inputEncoding, v.toLowerCase()); return this; }
    public MoeLayerTransformer setOutputEncoding(String v) { set(outputEncoding, v.toLowerCase()); return this; }
    public MoeLayerTransformer setOnBadRow(String v) { set(onBadRow, v.toLowerCase()); return this; }
    public MoeLayerTransformer setErrorCol(String v) { set(errorCol, v); return this; }
    public MoeLayerTransformer setIdCol(String v) { set(idCol, v); return this; }
    public MoeLayerTransformer setCpuThreads(int v) { set(cpuThreads, v); return this; }
    public MoeLayerTransformer setDropInputCol(boolean v) { set(dropInputCol, v); return this; }

    public String getModelPath() { return getOrDefault(modelPath); }
    public int[] getLayers() { return getOrDefault(layers).clone(); }
    public String getInputCol() { return getOrDefault(inputCol); }
    public String getOutputCol() { return getOrDefault(outputCol); }
    public int getBatchSize() { return (Integer) getOrDefault(batchSize); }
    public String getDevice() { return getOrDefault(device); }
    public String getPrecision() { return getOrDefault(precision); }
    public boolean getResidual() { return (Boolean) getOrDefault(residual); }
    public BadRowPolicy getOnBadRow() { return BadRowPolicy.parse(getOrDefault(onBadRow)); }
    public String getIdCol() { return getOrDefault(idCol); }
    public int getCpuThreads() { return (Integer) getOrDefault(cpuThreads); }
    public boolean getDropInputCol() { return (Boolean) getOrDefault(dropInputCol); }

    public String getErrorCol() {
        String e = getOrDefault(errorCol);
        return e.isEmpty() ? getOutputCol() + "_error" : e;
    }

    /** The layers, device, precision and residual as one serializable spec (what travels to executors). */
    public MoeLayerSpec spec() {
        if (!isDefined(modelPath)) throw new MoeSparkException("MoeLayerTransformer: modelPath is not set");
        if (!isDefined(layers)) throw new MoeSparkException("MoeLayerTransformer: layers is not set");
        return new MoeLayerSpec(getModelPath(), getLayers(), Device.parse(getDevice()), Precision.parse(getPrecision()),
                getResidual(), getCpuThreads());
    }

    /** The input column's encoding, from the param or (auto) its Spark type. */
    public HiddenEncoding inputEncodingFor(StructType schema) {
        StructField f = field(schema, getInputCol());
        String p = getOrDefault(inputEncoding);
        HiddenEncoding e = p.equals("auto") ? HiddenEncoding.inferFrom(f) : HiddenEncoding.parse(p);
        if (!e.accepts(f.dataType())) {
            throw new MoeSparkException("inputEncoding " + e.paramValue() + " needs a " + e.sparkType().simpleString()
                    + " column, but '" + f.name() + "' is " + f.dataType().simpleString());
        }
        return e;
    }

    public HiddenEncoding outputEncodingFor(StructType schema) {
        String p = getOrDefault(outputEncoding);
        return p.equals("same") ? inputEncodingFor(schema) : HiddenEncoding.parse(p);
    }

    private static StructField field(StructType schema, String name) {
        for (StructField f : schema.fields()) if (f.name().equals(name)) return f;
        throw new MoeSparkException("input column '" + name + "' is not in the dataset (columns: " + Arrays.toString(schema.fieldNames()) + ")");
    }

    @Override public StructType transformSchema(StructType schema) {
        HiddenEncoding out = outputEncodingFor(schema);
        List<String> names = Arrays.asList(schema.fieldNames());
        if (names.contains(getOutputCol())) throw new MoeSparkException("output column '" + getOutputCol() + "' already exists");
        boolean nullPolicy = getOnBadRow() == BadRowPolicy.NULL;
        StructType result = new StructType();
        for (StructField f : schema.fields()) if (!(getDropInputCol() && f.name().equals(getInputCol()))) result = result.add(f);
        result = result.add(out.field(getOutputCol(), nullPolicy));
        if (nullPolicy) {
            if (names.contains(getErrorCol())) throw new MoeSparkException("error column '" + getErrorCol() + "' already exists");
            result = result.add(getErrorCol(), DataTypes.StringType, true);
        }
        return result;
    }

    @Override public Dataset<Row> transform(Dataset<?> dataset) {
        StructType in = dataset.schema();
        StructType out = transformSchema(in);
        List<String> names = Arrays.asList(in.fieldNames());
        RowsFunction fn = new RowsFunction(spec(), inputEncodingFor(in), outputEncodingFor(in), getBatchSize(), getOnBadRow(),
                names.indexOf(getInputCol()), names.indexOf(getIdCol()), getIdCol(), getOnBadRow() == BadRowPolicy.NULL, getDropInputCol());
        return dataset.toDF().mapPartitions(fn, Encoders.row(out));
    }

    @Override public MoeLayerTransformer copy(ParamMap extra) { return defaultCopy(extra); }

    public static MLReader<MoeLayerTransformer> read() { return new DefaultParamsReader<>(); }

    public static MoeLayerTransformer load(String path) { return read().load(path); }

    /** The per-partition work; only this (the spec and column positions) is serialized into tasks. */
    private record RowsFunction(MoeLayerSpec spec, HiddenEncoding inEnc, HiddenEncoding outEnc, int batchTokens,
                                BadRowPolicy policy, int inputIndex, int idIndex, String idName, boolean withErrorColumn,
                                boolean dropInput)
            implements MapPartitionsFunction<Row, Row> {
        @Override public Iterator<Row> call(Iterator<Row> rows) {
            TaskContext tc = TaskContext.get();
            return new MicroBatchIterator<>(rows, new RowColumns(inputIndex, idIndex, idName, withErrorColumn, dropInput), inEnc, outEnc,
                    () -> LayerStack.open(spec), batchTokens, policy, tc == null ? -1 : tc.partitionId());
        }
    }

    private record RowColumns(int inputIndex, int idIndex, String idName, boolean withErrorColumn, boolean dropInput) implements MicroBatchIterator.RowCodec<Row, Row> {
        @Override public Object hiddenCell(Row row) { return row.get(inputIndex); }

        @Override public String describe(Row row, long index, int partition) {
            String id = idIndex >= 0 ? " (" + idName + "=" + row.get(idIndex) + ")" : "";
            return "row " + index + " of partition " + partition + id;
        }

        @Override public Row result(Row row, Object outCell, String error) {
            int n = row.size(), k = 0;
            Object[] v = new Object[n - (dropInput ? 1 : 0) + (withErrorColumn ? 2 : 1)];
            for (int i = 0; i < n; i++) if (!(dropInput && i == inputIndex)) v[k++] = row.get(i);
            v[k++] = outCell;
            if (withErrorColumn) v[k] = error;
            return RowFactory.create(v);
        }
    }
}
