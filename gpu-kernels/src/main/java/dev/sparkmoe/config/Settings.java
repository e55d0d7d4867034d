package dev.sparkmoe.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Every setting of the library, declared once with its doc string and default (the idea of spark-rapids'
 * RapidsConf). {@code docs/configuration.md} is generated from this list by {@link SettingsDoc}.
 * Modules declare their own settings here or in a class of their own through {@link #declare}.
 */
public final class Settings {
    private static final List<Setting<?>> ALL = Collections.synchronizedList(new ArrayList<>());

    private Settings() {}

    public static <T> Setting<T> declare(String key, String doc, T defaultValue, Function<String, T> parser, String typeName) {
        Setting<T> s = new Setting<>(key, doc, defaultValue, parser, typeName);
        synchronized (ALL) {
            for (Setting<?> o : ALL) if (o.key().equals(key)) throw new IllegalStateException("setting " + key + " declared twice");
            ALL.add(s);
        }
        return s;
    }

    public static Setting<Integer> intSetting(String key, String doc, int dflt) {
        return declare(key, doc, dflt, Integer::parseInt, "integer");
    }

    public static Setting<Long> bytesSetting(String key, String doc, long dflt) {
        return declare(key, doc, dflt, Settings::parseBytes, "byte size (e.g. 512m, 8g)");
    }

    public static Setting<Boolean> booleanSetting(String key, String doc, boolean dflt) {
        return declare(key, doc, dflt, v -> {
            if (!v.equalsIgnoreCase("true") && !v.equalsIgnoreCase("false")) throw new IllegalArgumentException("expected true or false");
            return Boolean.parseBoolean(v);
        }, "boolean");
    }

    public static Setting<String> stringSetting(String key, String doc, String dflt) {
        return declare(key, doc, dflt, v -> v, "string");
    }

    /** All declared settings, in declaration order (those of classes already loaded). */
    public static List<Setting<?>> all() {
        synchronized (ALL) {
            return List.copyOf(ALL);
        }
    }

    /** Parses 123, 64k, 512m, 8g, 1t (binary multiples). */
    public static long parseBytes(String v) {
        String s = v.toLowerCase(Locale.ROOT);
        long mult = 1;
        char last = s.isEmpty() ? ' ' : s.charAt(s.length() - 1);
        switch (last) {
            case 'k' -> mult = 1L << 10;
            case 'm' -> mult = 1L << 20;
            case 'g' -> mult = 1L << 30;
            case 't' -> mult = 1L << 40;
            default -> { }
        }
        long n = Long.parseLong(mult == 1 ? s : s.substring(0, s.length() - 1));
        if (n < 0) throw new IllegalArgumentException("must be >= 0");
        return Math.multiplyExact(n, mult);
    }
}
