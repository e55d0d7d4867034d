package dev.sparkmoe.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real launcher, {@code scripts/moe}, in its own JVM: arguments pass through, exit codes come back, it works from
 * another directory. MOE_CLASSPATH points it at the test class path, so it needs no packaged jar.
 */
class MoeScriptTest {
    @TempDir Path tmp;

    record Outcome(int code, String output) {}

    private Outcome script(String... args) throws IOException, InterruptedException {
        Path script = repoRoot().resolve("scripts/moe");
        List<String> cmd = new ArrayList<>(List.of("bash", script.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(tmp.toFile()).redirectErrorStream(true);
        pb.environment().put("MOE_CLASSPATH", System.getProperty("java.class.path"));
        pb.environment().put("MOE_JAVA_OPTS", "-Xmx512m");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "scripts/moe timed out");
        return new Outcome(p.exitValue(), out);
    }

    /** gpu-kernels runs its tests in gpu-kernels/; the script is one level up. */
    private static Path repoRoot() {
        Path dir = Path.of("").toAbsolutePath();
        for (Path d = dir; d != null; d = d.getParent()) {
            if (Files.isRegularFile(d.resolve("scripts/moe"))) return d;
        }
        throw new IllegalStateException("scripts/moe not found above " + dir);
    }

    @Test
    void launcherPassesArgumentsAndExitCodes() throws Exception {
        Outcome gen = script("generate", "--preset", "tiny-mixtral", "--out", "model", "--input-tokens", "3");
        assertEquals(0, gen.code(), gen.output());
        assertTrue(Files.isRegularFile(tmp.resolve("model/model.safetensors")), "relative --out resolved in the caller's directory");
        Outcome run = script("run", "--model", "model", "--layer", "0", "--input", "model/input.npy", "--output", "y.npy", "--device", "cpu");
        assertEquals(0, run.code(), run.output());
        assertTrue(run.output().contains("tokens: 3"), run.output());
        assertTrue(Files.isRegularFile(tmp.resolve("y.npy")));

        Outcome gpu = script("run", "--model", "model", "--layer", "0", "--input", "model/input.npy", "--output", "z.npy", "--device", "gpu");
        assertEquals(1, gpu.code(), gpu.output());
        assertEquals(1, gpu.output().lines().count(), "one line, no stack trace:\n" + gpu.output());
        Outcome usage = script("run", "--model", "model");
        assertEquals(2, usage.code(), usage.output());
    }
}
