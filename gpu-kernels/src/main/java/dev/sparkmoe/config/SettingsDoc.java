package dev.sparkmoe.config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Generates the settings reference (markdown) from the declared {@link Setting}s.
 * Usage: {@code SettingsDoc OUT.md HOLDER_CLASS...} where the holder classes declare settings in static fields.
 */
public final class SettingsDoc {
    private SettingsDoc() {}

    public static String markdown(List<Setting<?>> settings) {
        StringBuilder b = new StringBuilder();
        b.append("# Configuration\n\n")
         .append("Generated from the declarations in the code (`dev.sparkmoe.config.Settings`); do not edit by hand.\n")
         .append("Each key can be given as a JVM system property (`-Dkey=value`) or, in Spark jobs, as a Spark conf.\n\n")
         .append("| key | type | default | meaning |\n|---|---|---|---|\n");
        for (Setting<?> s : settings) {
            b.append("| `").append(s.key()).append("` | ").append(s.typeName()).append(" | `").append(s.defaultValue())
             .append("` | ").append(s.doc().replace("|", "\\|").replace("\n", " ")).append(" |\n");
        }
        return b.toString();
    }

    public static void main(String[] args) throws IOException, ClassNotFoundException {
        if (args.length < 1) throw new IllegalArgumentException("usage: SettingsDoc OUT.md HOLDER_CLASS...");
        for (int i = 1; i < args.length; i++) Class.forName(args[i], true, SettingsDoc.class.getClassLoader());
        Files.writeString(Path.of(args[0]), markdown(Settings.all()), StandardCharsets.UTF_8);
    }
}
