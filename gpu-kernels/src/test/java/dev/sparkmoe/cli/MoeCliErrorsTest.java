package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.Checkpoint;
import dev.sparkmoe.npy.NpyDType;
import dev.sparkmoe.npy.NpyFile;
import dev.sparkmoe.npy.NpyWriter;
import dev.sparkmoe.testing.TensorChecks;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static dev.sparkmoe.cli.CliHarness.moe;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Exit codes (0 ok, 1 runtime error in one line, 2 usage) and the bad inputs of {@code moe run}; no engine forward needed. */
class MoeCliErrorsTest {
    @TempDir static Path shared;
    @TempDir Path tmp;
    static Path model;
    static final int H = 256;

    @BeforeAll
    static void generate() {
        model = shared.resolve("tiny-qwen3");
        CliHarness.Result r = moe("generate", "--preset", "tiny-qwen3", "--layers", 1, "--out", model);
        assertEquals(0, r.code(), r::toString);
    }

    /** A runtime error: exit 1, one line on stderr naming the cause (each fragment), no stack trace. */
    private static CliHarness.Result expectError(CliHarness.Result r, String... fragments) {
        assertEquals(MoeCli.EXIT_RUNTIME_ERROR, r.code(), r::toString);
        List<String> lines = r.err().lines().toList();
        assertEquals(1, lines.size(), () -> "one line expected:\n" + r);
        assertTrue(lines.get(0).startsWith("moe "), r::toString);
        assertFalse(r.err().contains("\tat "), r::toString);
        for (String f : fragments) assertTrue(r.err().contains(f), () -> "expected '" + f + "' in:\n" + r);
        return r;
    }

    private static void expectUsage(CliHarness.Result r, String fragment) {
        assertEquals(MoeCli.EXIT_USAGE, r.code(), r::toString);
        assertTrue(r.err().contains(fragment), () -> "expected '" + fragment + "' in:\n" + r);
        assertTrue(r.err().contains("Usage:"), r::toString);
    }

    private CliHarness.Result run(Path input, Path output, Object... extra) {
        Object[] base = {"run", "--model", model, "--layer", 0, "--input", input, "--output", output, "--device", "cpu"};
        Object[] all = Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return moe(all);
    }

    private Path input(int tokens, int width) {
        Path p = tmp.resolve("x-" + tokens + "x" + width + ".npy");
        NpyWriter.writeFloat32(p, new long[] {tokens, width}, TensorChecks.randomNormal(TensorChecks.freshSeed(), tokens * width, 1.0));
        return p;
    }

    private List<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void usageErrorsExitWith2() {
        expectUsage(moe(), "a command is required");
        CliHarness.Result unknown = moe("frobnicate");
        assertEquals(MoeCli.EXIT_USAGE, unknown.code(), unknown::toString);
        assertTrue(unknown.err().contains("'frobnicate'"), unknown::toString);
        expectUsage(moe("generate", "--out", tmp.resolve("g")), "--preset");
        expectUsage(moe("generate", "--preset", "gpt-5", "--out", tmp.resolve("g")), "unknown preset 'gpt-5'");
        expectUsage(moe("generate", "--preset", "tiny-qwen3", "--dtype", "int4", "--out", tmp.resolve("g")), "'int4' is not one of");
        expectUsage(moe("generate", "--preset", "tiny-qwen3", "--layers", 0, "--out", tmp.resolve("g")), "--layers must be >= 1");
        expectUsage(moe("generate", "--preset", "tiny-qwen3", "--shard-size", "lots", "--out", tmp.resolve("g")), "not a byte size");
        expectUsage(moe("generate", "--preset", "tiny-qwen3", "--input", tmp.resolve("x.npy"), "--out", tmp.resolve("g")), "--input needs --input-tokens");
        expectUsage(moe("run", "--model", model, "--layer", 0, "--input", "x.npy"), "--output");
        expectUsage(moe("run", "--model", model, "--layer", "zero", "--input", "x.npy", "--output", "y.npy"), "--layer");
        expectUsage(run(tmp.resolve("x.npy"), tmp.resolve("y.npy"), "--device", "tpu"), "'tpu' is not one of auto, cpu, gpu");
        expectUsage(run(tmp.resolve("x.npy"), tmp.resolve("y.npy"), "--precision", "int8"), "'int8' is not one of native, fp8");
        expectUsage(run(tmp.resolve("x.npy"), tmp.resolve("y.npy"), "--threads", -1), "--threads must be >= 0");
        expectUsage(moe("gen-input", "--tokens", 3, "--out", tmp.resolve("x.npy")), "--model");
        expectUsage(moe("gen-input", "--model", model, "--hidden", 8, "--tokens", 3, "--out", tmp.resolve("x.npy")), "mutually exclusive");
        assertFalse(Files.exists(tmp.resolve("g")), "usage errors create nothing");
    }

    @Test
    void helpAndVersionExitWith0() {
        assertEquals(0, moe("--help").code());
        assertEquals(0, moe("--version").code());
        CliHarness.Result h = moe("help", "run");
        assertEquals(0, h.code());
        assertTrue(h.out().contains("--precision"), h::toString);
        assertEquals(0, moe("bench", "--help").code(), "bench is registered");
        CliHarness.Result g = moe("generate", "--help");
        assertTrue(g.out().contains("tiny-deepseek") && g.out().contains("qwen3-30b-a3b"), "presets listed: " + g.out());
    }

    @Test
    void gpuWithoutAUsableEngineIsOneClearLine() {
        Path x = input(4, H);
        CliHarness.Result r = run(x, tmp.resolve("y.npy"), "--device", "gpu");
        expectError(r);
        assertTrue(r.err().toLowerCase().contains("gpu"), r::toString);
        assertFalse(Files.exists(tmp.resolve("y.npy")));
        CliHarness.Result verbose = run(x, tmp.resolve("y.npy"), "--device", "gpu", "--verbose");
        assertEquals(1, verbose.code());
        assertTrue(verbose.err().contains("\tat "), "--verbose prints the stack trace:\n" + verbose);
    }

    @Test
    void inputOfWrongWidthRankOrDtype() throws IOException {
        expectError(run(input(5, 128), tmp.resolve("y.npy")), "width 128", "hidden size is 256");
        Path rank1 = tmp.resolve("r1.npy");
        NpyWriter.writeFloat32(rank1, new long[] {H}, new float[H]);
        expectError(run(rank1, tmp.resolve("y.npy")), "rank 1", "[tokens, 256]");
        Path rank3 = tmp.resolve("r3.npy");
        NpyWriter.writeFloat32(rank3, new long[] {2, 2, H}, new float[4 * H]);
        expectError(run(rank3, tmp.resolve("y.npy")), "rank 3");
        Path f64 = tmp.resolve("f64.npy");
        NpyWriter.writeFloat64(f64, new long[] {2, H}, new double[2 * H]);
        expectError(run(f64, tmp.resolve("y.npy")), "'<f8'", "float32");
        Path notNpy = tmp.resolve("x.npy");
        Files.writeString(notNpy, "1,2,3");
        expectError(run(notNpy, tmp.resolve("y.npy")), "not a .npy file");
        expectError(run(tmp.resolve("absent.npy"), tmp.resolve("y.npy")), "absent.npy does not exist");
        assertFalse(Files.exists(tmp.resolve("y.npy")));
    }

    @Test
    void nanOrInfInTheInputIsRejectedNamingTheToken() throws IOException {
        float[] x = TensorChecks.randomNormal(TensorChecks.freshSeed(), 8 * H, 1.0);
        x[5 * H + 17] = Float.NaN;
        Path nan = tmp.resolve("nan.npy");
        NpyWriter.writeFloat32(nan, new long[] {8, H}, x);
        Path out = tmp.resolve("y.npy");
        NpyWriter.writeFloat32(out, new long[] {1}, new float[] {42});
        byte[] before = Files.readAllBytes(out);
        expectError(run(nan, out), "token 5", "channel 17", "NaN");
        assertArrayEquals(before, Files.readAllBytes(out), "an existing output is left as it was");

        x[5 * H + 17] = 0;
        x[2] = Float.NEGATIVE_INFINITY;
        Path inf = tmp.resolve("inf.npy");
        NpyWriter.writeFloat32(inf, new long[] {8, H}, x);
        expectError(run(inf, out), "token 0", "Infinity");
        // bf16 input: 0x7f80 is +Inf
        short[] bits = new short[3 * H];
        bits[2 * H] = (short) 0x7f80;
        Path bf = tmp.resolve("bf.npy");
        NpyWriter.writeUint16(bf, new long[] {3, H}, bits);
        expectError(run(bf, out), "token 2");
        assertEquals(List.of("bf.npy", "inf.npy", "nan.npy", "y.npy"), listing(tmp), "no temporary or partial file left");
    }

    @Test
    void unwritableOutputLeavesNothingBehind() throws IOException {
        Path x = input(3, H);
        List<String> before = listing(tmp);
        expectError(run(x, tmp.resolve("no/such/dir/y.npy")), "does not exist");
        Path dirOut = Files.createDirectory(tmp.resolve("out.npy"));
        expectError(run(x, dirOut), "is a directory");
        Path fileAsDir = tmp.resolve("plainfile");
        Files.writeString(fileAsDir, "x");
        expectError(run(x, fileAsDir.resolve("y.npy")), "does not exist");
        List<String> after = listing(tmp);
        assertEquals(before.size() + 2, after.size(), "only the directory and file made by this test: " + after);
        assertTrue(listing(dirOut).isEmpty());
    }

    @Test
    void readOnlyOutputDirectory() throws IOException {
        Path ro = Files.createDirectory(tmp.resolve("ro"));
        Files.setPosixFilePermissions(ro, java.nio.file.attribute.PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            org.junit.jupiter.api.Assumptions.assumeFalse(Files.isWritable(ro), () -> {
                String why = "skipped: a read-only directory is still writable for this user (root?)";
                System.out.println("[MoeCliErrorsTest] " + why);
                return why;
            });
            expectError(run(input(2, H), ro.resolve("y.npy")), "is not writable");
            assertTrue(listing(ro).isEmpty());
        } finally {
            Files.setPosixFilePermissions(ro, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }

    @Test
    void badModelOrLayer() throws IOException {
        Path x = input(2, H);
        expectError(moe("run", "--model", tmp.resolve("none"), "--layer", 0, "--input", x, "--output", tmp.resolve("y.npy")), "does not exist");
        expectError(run(x, tmp.resolve("y.npy"), "--layer", 3), "layer 3 is not a MoE layer");
        Path broken = Files.createDirectory(tmp.resolve("broken"));
        Files.copy(model.resolve("config.json"), broken.resolve("config.json"));
        byte[] st = Files.readAllBytes(model.resolve("model.safetensors"));
        Files.write(broken.resolve("model.safetensors"), Arrays.copyOf(st, st.length - 1000));
        expectError(moe("inspect", "--model", broken), "model.safetensors", "truncated");
        Files.writeString(broken.resolve("config.json"), Files.readString(model.resolve("config.json")).replace("\"silu\"", "\"gelu\""));
        expectError(moe("inspect", "--model", broken), "hidden_act 'gelu'");
        assertFalse(Files.exists(tmp.resolve("y.npy")));
    }

    @Test
    void generateRefusesToMixWithExistingFiles() throws IOException {
        Path dir = tmp.resolve("g");
        assertEquals(0, moe("generate", "--preset", "tiny-mixtral", "--out", dir, "--shard-size", "300KB").code());
        assertTrue(Files.exists(dir.resolve(Checkpoint.INDEX)));
        expectError(moe("generate", "--preset", "tiny-mixtral", "--out", dir), "is not empty", "--force");
        Files.writeString(dir.resolve("notes.txt"), "mine");
        CliHarness.Result forced = moe("generate", "--preset", "tiny-qwen2", "--out", dir, "--force");
        assertEquals(0, forced.code(), forced::toString);
        assertEquals(List.of("config.json", "model.safetensors", "notes.txt"), listing(dir), "stale shards and index removed, other files kept");
        CliHarness.Result inspect = moe("inspect", "--model", dir);
        assertEquals(0, inspect.code(), inspect::toString);
        assertTrue(inspect.out().contains("qwen2_moe"), inspect::toString);
        Path file = tmp.resolve("file");
        Files.writeString(file, "x");
        expectError(moe("generate", "--preset", "tiny-mixtral", "--out", file), "not a directory");
    }

    @Test
    void genInput() {
        Path a = tmp.resolve("a.npy"), b = tmp.resolve("b.npy");
        assertEquals(0, moe("gen-input", "--model", model, "--tokens", 9, "--out", a).code());
        assertEquals(0, moe("gen-input", "--hidden", 64, "--tokens", 3, "--dtype", "bf16", "--seed", 5, "--out", b).code());
        try (NpyFile f = NpyFile.open(a)) {
            assertArrayEquals(new long[] {9, H}, f.shape());
            assertEquals(NpyDType.FLOAT32, f.dtype());
            float[] v = f.readFloat32();
            double sq = 0;
            for (float x : v) sq += x * x;
            assertEquals(1.0, sq / v.length, 0.2, "N(0, 1)");
        }
        try (NpyFile f = NpyFile.open(b)) {
            assertArrayEquals(new long[] {3, 64}, f.shape());
            assertEquals(NpyDType.UINT16, f.dtype());
        }
        expectError(moe("gen-input", "--model", tmp.resolve("none"), "--tokens", 3, "--out", a), "config.json");
    }
}
