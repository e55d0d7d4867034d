package dev.sparkmoe.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparkmoe.model.ModelFamily.Projection;
import dev.sparkmoe.model.MoeConfig;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointRoundTripTest {
    @TempDir Path tmp;

    /** Every dtype written by SafetensorsWriter reads back bit for bit through SafetensorsFile and Tensor. */
    @Test
    void writerRoundTripsEveryDtype() throws IOException {
        long seed = TensorChecks.freshSeed();
        float[] v = TensorChecks.randomNormal(seed, 6 * 70, 3.0);
        SafetensorsWriter w = new SafetensorsWriter();
        w.addFloats("a.f32", new long[] {6, 70}, v);
        w.add("b.bf16", DType.BF16, new long[] {6, 70}, b -> { for (float x : v) b.putShort(Floats.floatToBf16(x)); });
        w.add("c.f16", DType.F16, new long[] {420}, b -> { for (float x : v) b.putShort(Floats.floatToF16(x)); });
        w.add("d.e4m3", DType.F8_E4M3, new long[] {2, 3, 70}, b -> { for (float x : v) b.put(Floats.floatToE4m3(x)); });
        w.add("e.empty", DType.F32, new long[] {0, 5}, b -> { });
        Path f = tmp.resolve("x.safetensors");
        w.writeFile(f);
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            assertEquals(List.of("a.f32", "b.bf16", "c.f16", "d.e4m3", "e.empty"), List.copyOf(s.names()));
            assertEquals("pt", s.metadata().get("format"));
            assertArrayEquals(v, s.tensor("a.f32").toFloats(), "seed " + seed);
            Tensor bf = s.tensor("b.bf16"), hf = s.tensor("c.f16"), e4 = s.tensor("d.e4m3");
            assertArrayEquals(new long[] {2, 3, 70}, e4.shape());
            for (int i = 0; i < v.length; i++) {
                assertEquals(Floats.bf16ToFloat(Floats.floatToBf16(v[i])), bf.get(i));
                assertEquals(Floats.f16ToFloat(Floats.floatToF16(v[i])), hf.get(i));
                assertEquals(Floats.e4m3ToFloat(Floats.floatToE4m3(v[i])), e4.get(i));
            }
            assertEquals(0, s.tensor("e.empty").numel());
        }
        // the data area starts 8-byte aligned, as the reference writer keeps it
        ByteBuffer head = ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0, head.getLong() % 8);
    }

    /** A sharded checkpoint with its index reads back the same tensors as a single file. */
    @Test
    void shardedWithIndexMatchesSingleFile() throws IOException {
        MoeConfig cfg = SyntheticCheckpoint.preset("tiny-qwen3", 2, DType.BF16);
        Path single = tmp.resolve("single"), sharded = tmp.resolve("sharded");
        SyntheticCheckpoint.write(cfg, DType.BF16, 7, single, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        SyntheticCheckpoint.write(cfg, DType.BF16, 7, sharded, 1_500_000);
        assertTrue(Files.exists(single.resolve("model.safetensors")));
        assertFalse(Files.exists(single.resolve(Checkpoint.INDEX)));
        assertTrue(Files.exists(sharded.resolve(Checkpoint.INDEX)));
        JsonNode index = new ObjectMapper().readTree(sharded.resolve(Checkpoint.INDEX).toFile());
        long shards;
        try (Stream<Path> s = Files.list(sharded)) {
            shards = s.filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors")).count();
        }
        assertTrue(shards > 2, "expected several shards, got " + shards);
        try (Checkpoint a = Checkpoint.open(single); Checkpoint b = Checkpoint.open(sharded)) {
            assertEquals(a.config(), b.config());
            assertEquals(a.tensorNames(), b.tensorNames());
            long total = 0;
            for (String name : a.tensorNames()) {
                assertEquals(a.tensor(name).bytes(), b.tensor(name).bytes(), name);
                assertEquals(index.get("weight_map").get(name).asText(), b.fileOf(name));
                total += b.entry(name).end() - b.entry(name).begin();
            }
            assertEquals(total, index.get("metadata").get("total_size").asLong());
        }
        // the same seed gives the same weights; another seed does not
        Path other = tmp.resolve("other");
        SyntheticCheckpoint.write(cfg, DType.BF16, 8, other, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
        try (Checkpoint a = Checkpoint.open(single); Checkpoint c = Checkpoint.open(other)) {
            String name = cfg.family().expertWeight(1, 3, Projection.DOWN);
            assertFalse(a.tensor(name).bytes().equals(c.tensor(name).bytes()));
        }
    }

    /**
     * Every tiny preset in every weight dtype: the MoE layer loads with the config's shapes, and its weights are the
     * generator's N(0, std²) draw exactly (F32), correctly rounded (BF16, F16), or within E4M3 precision after the
     * block scales (FP8).
     */
    @ParameterizedTest
    @CsvSource({"tiny-mixtral", "tiny-qwen3", "tiny-qwen2", "tiny-deepseek"})
    void syntheticPresetsInEveryDtype(String preset) throws IOException {
        for (DType d : DType.values()) {
            MoeConfig cfg = SyntheticCheckpoint.preset(preset, 1, d);
            Path dir = tmp.resolve(preset + "-" + d);
            long seed = TensorChecks.freshSeed();
            SyntheticCheckpoint.write(cfg, d, seed, dir, SyntheticCheckpoint.DEFAULT_SHARD_BYTES);
            try (Checkpoint ckpt = Checkpoint.open(dir)) {
                assertEquals(cfg, ckpt.config());
                MoeLayerWeights w = MoeLayerWeights.load(ckpt, 0);
                assertEquals(cfg.numExperts(), w.experts().size());
                assertEquals(cfg.hasSharedExpert(), w.shared() != null);
                assertEquals(cfg.sharedExpertGated(), w.sharedGate() != null);
                assertEquals(cfg.hasSelectionBias(), w.selectionBias() != null);
                long fileBytes = 0;
                for (String n : ckpt.tensorNames()) fileBytes += ckpt.entry(n).end() - ckpt.entry(n).begin();
                assertEquals(fileBytes, w.storedBytes(), "one layer: every tensor of the file belongs to it");

                WeightMatrix down = w.experts().get(cfg.numExperts() - 1).down();
                assertEquals(d, down.dtype());
                assertEquals(d == DType.F8_E4M3, down.isBlockScaled());
                int h = cfg.hiddenSize(), i = cfg.expertIntermediateSize();
                float[] drawn = SyntheticCheckpoint.normal(seed, down.name(), h * i, 1.0 / Math.sqrt(i));
                float[] got = down.toFloats();
                switch (d) {
                    case F32 -> assertArrayEquals(drawn, got);
                    case BF16 -> { for (int k = 0; k < got.length; k++) assertEquals(Floats.bf16ToFloat(Floats.floatToBf16(drawn[k])), got[k]); }
                    case F16 -> { for (int k = 0; k < got.length; k++) assertEquals(Floats.f16ToFloat(Floats.floatToF16(drawn[k])), got[k]); }
                    case F8_E4M3 -> {
                        assertArrayEquals(new long[] {WeightMatrix.ceilDiv(h, 128), WeightMatrix.ceilDiv(i, 128)}, down.scaleInv().shape());
                        double err = TensorChecks.relativeError(got, drawn);
                        assertTrue(err > 0 && err < 0.04, "E4M3 with block scales: relative error " + err);
                    }
                }
                // activations stay O(1): the router's logits for a unit-variance input have unit-order spread
                float[] router = w.router().toFloats();
                double sq = 0;
                for (float x : router) sq += x * x;
                assertEquals(1.0, sq / cfg.numExperts(), 0.25, "router rows have norm ~1");
            }
        }
    }

    @Test
    void deepseekFp8LayerOfAShardedCheckpoint() {
        MoeConfig cfg = SyntheticCheckpoint.preset("tiny-deepseek", 2, DType.F8_E4M3);
        Path dir = tmp.resolve("ds");
        SyntheticCheckpoint.write(cfg, DType.F8_E4M3, 3, dir, 1_500_000);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            MoeLayerWeights w2 = MoeLayerWeights.load(ckpt, 1);
            assertEquals(1, w2.layer());
            assertNotNull(w2.selectionBias());
            assertEquals(32, w2.selectionBias().length);
            WeightMatrix g = w2.shared().gate();
            assertTrue(g.isBlockScaled());
            assertEquals("model.layers.1.mlp.shared_experts.gate_proj.weight", g.name());
            assertEquals("model.layers.1.mlp.shared_experts.gate_proj.weight_scale_inv", g.scaleInv().name());
            assertNull(w2.sharedGate());
        }
    }
}
