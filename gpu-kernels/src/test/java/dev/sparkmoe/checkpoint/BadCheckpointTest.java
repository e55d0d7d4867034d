package dev.sparkmoe.checkpoint;

import dev.sparkmoe.model.ModelFamily;
import dev.sparkmoe.model.ModelFamily.Projection;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.model.MoeConfigException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Corrupt, truncated or mislabelled checkpoints: each gets a clear exception naming the file, tensor or setting. */
class BadCheckpointTest {
    @TempDir static Path shared;
    @TempDir Path tmp;
    static Path qwen3Bf16;
    static Path deepseekFp8;

    @BeforeAll
    static void generate() {
        qwen3Bf16 = shared.resolve("qwen3");
        SyntheticCheckpoint.write(SyntheticCheckpoint.preset("tiny-qwen3", 1, DType.BF16), DType.BF16, 11, qwen3Bf16,
                SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        deepseekFp8 = shared.resolve("deepseek");
        SyntheticCheckpoint.write(SyntheticCheckpoint.preset("tiny-deepseek", 1, DType.F8_E4M3), DType.F8_E4M3, 12, deepseekFp8,
                SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
    }

    private static <E extends RuntimeException> E expect(Class<E> type, Executable action, String... fragments) {
        E e = assertThrows(type, action);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        return e;
    }

    /** A safetensors file from a raw header and {@code dataBytes} zero bytes. */
    private Path raw(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = Files.createTempFile(tmp, "raw", ".safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static Executable open(Path f) {
        return () -> SafetensorsFile.open(f).close();
    }

    @Test
    void truncatedAndCorruptFiles() throws IOException {
        Path tiny = tmp.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        expect(CheckpointException.class, open(tiny), "tiny.safetensors", "shorter than the 8-byte header length");

        Path pastEnd = tmp.resolve("past.safetensors");
        Files.write(pastEnd, ByteBuffer.allocate(100).order(ByteOrder.LITTLE_ENDIAN).putLong(5000).array());
        expect(CheckpointException.class, open(pastEnd), "header length 5000 is past the end");

        // a real file cut in the middle of its data
        Path whole = qwen3Bf16.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(whole);
        Path cut = tmp.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length / 2));
        expect(CheckpointException.class, open(cut), "cut.safetensors", "out of range", "truncated file?");
        // cut inside the header
        Path cutHeader = tmp.resolve("cuthead.safetensors");
        Files.write(cutHeader, Arrays.copyOf(bytes, 200));
        expect(CheckpointException.class, open(cutHeader), "past the end");

        expect(CheckpointException.class, open(raw("{not json", 0)), "not valid JSON");
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)), "not valid JSON", "Duplicate field 'a'");
        expect(CheckpointException.class, open(raw("[1, 2]", 0)), "not a JSON object");
    }

    @Test
    void offsetsOutOfRangeOverlappingOrMismatched() throws IOException {
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8)),
                "'a'", "data_offsets [0, 16] are out of range of the 8-byte data area");
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16)), "'a'", "out of range");
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24)), "'a' and 'b' overlap");
        // an overlap hidden behind an empty tensor lying inside a larger one
        expect(CheckpointException.class,
                open(raw("{\"big\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]},"
                        + "\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[20,20]},"
                        + "\"inner\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[30,38]}}", 100)), "'big' and 'inner' overlap");
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12)), "'a' spans 12 bytes", "needs 16");
        expect(CheckpointException.class,
                open(raw("{\"q\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16)), "'q'", "'Q4_K'", "not supported");
        // valid safetensors dtypes outside this library's (integer buffers, ...) keep the file readable, are sized
        // and overlap-checked, and fail only when used
        Path mixed = raw("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24);
        try (SafetensorsFile f = SafetensorsFile.open(mixed)) {
            assertTrue(f.contains("ids") && f.names().contains("w"));
            assertTrue(f.otherDtypes().containsKey("ids"));
            expect(CheckpointException.class, () -> f.tensor("ids"), "'ids'", "'I64'", "not supported");
            assertTrue(f.tensor("w").numel() == 2);
        }
        expect(CheckpointException.class,
                open(raw("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,12]}}", 16)), "'ids' spans 12 bytes");
        expect(CheckpointException.class,
                open(raw("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                        + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16)), "'ids' and 'w' overlap");
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8)), "'a'", "bad shape");
        expect(CheckpointException.class,
                open(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8)), "'a'", "data_offsets");
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        String down = ModelFamily.QWEN3_MOE.expertWeight(0, 3, Projection.DOWN);
        Path dir = new CheckpointSurgery(qwen3Bf16).drop(down).writeTo(tmp.resolve("m"));
        try (Checkpoint c = Checkpoint.open(dir)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + down + "'", "missing");
        }
        String bias = ModelFamily.DEEPSEEK_V3.routerBias(0);
        Path ds = new CheckpointSurgery(deepseekFp8).drop(bias).writeTo(tmp.resolve("d"));
        try (Checkpoint c = Checkpoint.open(ds)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + bias + "'", "missing");
        }
        String scale = WeightMatrix.scaleName(ModelFamily.DEEPSEEK_V3.expertWeight(0, 5, Projection.UP));
        Path noScale = new CheckpointSurgery(deepseekFp8).drop(scale).writeTo(tmp.resolve("s"));
        try (Checkpoint c = Checkpoint.open(noScale)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + scale + "'");
        }
    }

    @Test
    void shapeNotMatchingTheConfigIsNamed() throws IOException {
        MoeConfig cfg = SyntheticCheckpoint.preset("tiny-qwen3", 1, DType.BF16);
        String up = cfg.family().expertWeight(0, 2, Projection.UP);
        Path dir = new CheckpointSurgery(qwen3Bf16).replace(up, DType.BF16, 128, 257).writeTo(tmp.resolve("m"));
        try (Checkpoint c = Checkpoint.open(dir)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + up + "'", "[128, 257]", "[128, 256]");
        }
        String router = cfg.family().routerWeight(0);
        Path r = new CheckpointSurgery(qwen3Bf16).replace(router, DType.BF16, 15, 256).writeTo(tmp.resolve("r"));
        try (Checkpoint c = Checkpoint.open(r)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + router + "'", "[15, 256]");
        }
        // hidden_size in config.json disagrees with every tensor
        Path wide = new CheckpointSurgery(qwen3Bf16).editConfig(n -> n.put("hidden_size", 512)).writeTo(tmp.resolve("w"));
        try (Checkpoint c = Checkpoint.open(wide)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "has shape [16, 256]", "[16, 512]");
        }
        String scale = WeightMatrix.scaleName(ModelFamily.DEEPSEEK_V3.expertWeight(0, 1, Projection.DOWN));
        Path s = new CheckpointSurgery(deepseekFp8).replace(scale, DType.F32, 1, 1).writeTo(tmp.resolve("s"));
        try (Checkpoint c = Checkpoint.open(s)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + scale + "'", "[1, 1]", "[2, 1]");
        }
    }

    @Test
    void dtypeNotMatchingTheConfigIsNamed() throws IOException {
        // FP8 checkpoint (quantization_config) with one expert weight in BF16
        String gate = ModelFamily.DEEPSEEK_V3.expertWeight(0, 4, Projection.GATE);
        Path a = new CheckpointSurgery(deepseekFp8).replace(gate, DType.BF16, 128, 256).writeTo(tmp.resolve("a"));
        try (Checkpoint c = Checkpoint.open(a)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + gate + "'", "BF16", "FP8 checkpoint");
        }
        // FP8 weights but config.json without quantization_config
        Path b = new CheckpointSurgery(deepseekFp8).editConfig(n -> n.remove("quantization_config")).writeTo(tmp.resolve("b"));
        try (Checkpoint c = Checkpoint.open(b)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "is F8_E4M3", "no quantization_config");
        }
        // scales must be F32
        String scale = WeightMatrix.scaleName(gate);
        Path s = new CheckpointSurgery(deepseekFp8).replace(scale, DType.BF16, 1, 2).writeTo(tmp.resolve("s"));
        try (Checkpoint c = Checkpoint.open(s)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + scale + "'", "BF16");
        }
        // routers are never FP8
        String router = ModelFamily.QWEN3_MOE.routerWeight(0);
        Path r = new CheckpointSurgery(qwen3Bf16).replace(router, DType.F8_E4M3, 16, 256).writeTo(tmp.resolve("r"));
        try (Checkpoint c = Checkpoint.open(r)) {
            expect(CheckpointException.class, () -> MoeLayerWeights.load(c, 0), "'" + router + "'", "F8_E4M3");
        }
    }

    @Test
    void unsupportedFamilyOrActivationInConfigJson() throws IOException {
        Path llama = new CheckpointSurgery(qwen3Bf16).editConfig(n -> n.put("model_type", "llama")).writeTo(tmp.resolve("l"));
        expect(MoeConfigException.class, () -> Checkpoint.open(llama), "model_type 'llama' is not supported");
        Path gelu = new CheckpointSurgery(qwen3Bf16).editConfig(n -> n.put("hidden_act", "gelu_pytorch_tanh")).writeTo(tmp.resolve("g"));
        expect(MoeConfigException.class, () -> Checkpoint.open(gelu), "hidden_act 'gelu_pytorch_tanh'");
        Path bad = Files.createDirectory(tmp.resolve("bad"));
        Files.writeString(bad.resolve("config.json"), "{\"model_type\": ");
        expect(MoeConfigException.class, () -> Checkpoint.open(bad), "config.json");
        try (Checkpoint c = Checkpoint.open(qwen3Bf16)) {
            expect(MoeConfigException.class, () -> MoeLayerWeights.load(c, 1), "layer 1 is not a MoE layer");
        }
    }

    @Test
    void brokenDirectoriesAndIndexes() throws IOException {
        expect(CheckpointException.class, () -> Checkpoint.open(tmp.resolve("nowhere")), "does not exist");
        Path noConfig = Files.createDirectory(tmp.resolve("noconfig"));
        expect(CheckpointException.class, () -> Checkpoint.open(noConfig), "no config.json");
        Path noWeights = Files.createDirectory(tmp.resolve("noweights"));
        Files.copy(qwen3Bf16.resolve("config.json"), noWeights.resolve("config.json"));
        expect(CheckpointException.class, () -> Checkpoint.open(noWeights), "no .safetensors file");

        Path sharded = tmp.resolve("sharded");
        SyntheticCheckpoint.write(SyntheticCheckpoint.preset("tiny-mixtral", 1, DType.BF16), DType.BF16, 1, sharded, 400_000);
        Path second;
        try (var files = Files.list(sharded)) {
            second = files.filter(p -> p.getFileName().toString().startsWith("model-00002-of-")).findFirst().orElseThrow();
        }
        String secondName = second.getFileName().toString();
        String firstName = secondName.replace("model-00002-", "model-00001-");
        Files.move(second, tmp.resolve("moved.safetensors"));
        expect(CheckpointException.class, () -> Checkpoint.open(sharded), secondName, "missing");
        Files.move(tmp.resolve("moved.safetensors"), second);
        Files.writeString(sharded.resolve(Checkpoint.INDEX), "{\"weight_map\": {\"x\": \"../elsewhere.safetensors\"}}");
        expect(CheckpointException.class, () -> Checkpoint.open(sharded), "outside the directory");
        Files.writeString(sharded.resolve(Checkpoint.INDEX), "{\"metadata\": {}}");
        expect(CheckpointException.class, () -> Checkpoint.open(sharded), "no weight_map");
        Files.writeString(sharded.resolve(Checkpoint.INDEX), "{\"weight_map\": {\"model.layers.0.block_sparse_moe.gate.weight\": \"" + firstName
                + "\", \"ghost\": \"" + firstName + "\"}}");
        try (Checkpoint c = Checkpoint.open(sharded)) {
            expect(CheckpointException.class, () -> c.tensor("ghost"), "'ghost'", "although the index says so");
            expect(CheckpointException.class, () -> c.tensor("model.layers.0.block_sparse_moe.experts.0.w1.weight"), "missing");
        }

        // without an index, a tensor in two files is ambiguous
        Path twice = Files.createDirectory(tmp.resolve("twice"));
        Files.copy(qwen3Bf16.resolve("config.json"), twice.resolve("config.json"));
        Files.copy(qwen3Bf16.resolve("model.safetensors"), twice.resolve("a.safetensors"));
        Files.copy(qwen3Bf16.resolve("model.safetensors"), twice.resolve("b.safetensors"));
        expect(CheckpointException.class, () -> Checkpoint.open(twice), "is in both a.safetensors and b.safetensors");
    }

    @Test
    void closedCheckpointRefusesUse() {
        Checkpoint c = Checkpoint.open(qwen3Bf16);
        c.close();
        expect(CheckpointException.class, () -> c.tensor(ModelFamily.QWEN3_MOE.routerWeight(0)), "closed");
        assertThrows(IllegalStateException.class, c::close);
    }
}
