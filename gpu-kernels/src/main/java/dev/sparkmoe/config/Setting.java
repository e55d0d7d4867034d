package dev.sparkmoe.config;

import java.util.Map;
import java.util.function.Function;

/**
 * One declared setting: its key, doc string, default and parser, declared once (see {@link Settings}) and read from
 * any string map (JVM system properties, a Spark conf, CLI options). The reference docs are generated from these.
 */
public final class Setting<T> {
    private final String key;
    private final String doc;
    private final T defaultValue;
    private final Function<String, T> parser;
    private final String typeName;

    Setting(String key, String doc, T defaultValue, Function<String, T> parser, String typeName) {
        this.key = key;
        this.doc = doc;
        this.defaultValue = defaultValue;
        this.parser = parser;
        this.typeName = typeName;
    }

    public String key() { return key; }
    public String doc() { return doc; }
    public T defaultValue() { return defaultValue; }
    public String typeName() { return typeName; }

    /** The value in {@code source}, or the default when absent; a clear error naming the key when malformed. */
    public T from(Map<String, String> source) {
        String raw = source.get(key);
        return raw == null ? defaultValue : parse(raw);
    }

    /** The value of the JVM system property named by the key, or the default. */
    public T fromSystemProperties() {
        String raw = System.getProperty(key);
        return raw == null ? defaultValue : parse(raw);
    }

    public T parse(String raw) {
        try {
            return parser.apply(raw.trim());
        } catch (RuntimeException e) {
            throw new SettingException("setting " + key + " = '" + raw + "' is not a valid " + typeName
                    + (e.getMessage() == null ? "" : ": " + e.getMessage()), e);
        }
    }

    @Override public String toString() { return key + " (default " + defaultValue + ")"; }
}
