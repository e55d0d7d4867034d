package dev.sparkmoe.spark;

import dev.sparkmoe.config.Setting;
import dev.sparkmoe.config.Settings;
import dev.sparkmoe.config.SettingsDoc;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/configuration.md is generated from the declared settings; this fails when it is stale.
 * Regenerate with {@code mvn -pl spark-module -am test -Dtest=ConfigurationDocTest -Dsparkmoe.updateDocs=true
 * -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class ConfigurationDocTest {
    /** Every class that declares settings: the engine's and the Spark integration's. */
    static final List<String> HOLDERS = List.of(
            "dev.sparkmoe.cpu.CpuEngineSettings",
            "dev.sparkmoe.gpu.GpuEngineSettings",
            "dev.sparkmoe.cuda.Cuda",
            "dev.sparkmoe.spark.MoeSparkConf");

    @Test
    void configurationReferenceMatchesTheDeclarations() throws Exception {
        for (String h : HOLDERS) Class.forName(h, true, getClass().getClassLoader());
        List<Setting<?>> all = Settings.all();
        assertTrue(all.size() >= HOLDERS.size(), "expected settings from every holder, got " + all);
        String expected = SettingsDoc.markdown(all.stream()
                .sorted(java.util.Comparator.comparing(Setting::key)).toList());
        Path doc = Path.of(System.getProperty("user.dir")).getParent().resolve("docs/configuration.md");
        if (Boolean.getBoolean("sparkmoe.updateDocs")) Files.writeString(doc, expected, StandardCharsets.UTF_8);
        String actual = Files.exists(doc) ? Files.readString(doc, StandardCharsets.UTF_8) : "(missing)";
        assertEquals(expected, actual, "docs/configuration.md is stale: regenerate it (see this test's javadoc)");
    }
}
