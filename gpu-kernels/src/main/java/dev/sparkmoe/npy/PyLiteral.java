package dev.sparkmoe.npy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small parser for the Python literals of a {@code .npy} header ({@code repr} of a dict): dicts with string keys,
 * single- or double-quoted strings (with backslash escapes), integers, {@code True}/{@code False}/{@code None},
 * tuples and lists, with any whitespace and trailing commas. Values become {@code Map<String, Object>},
 * {@code String}, {@code Long}, {@code Boolean}, {@code null} and {@code List<Object>} (tuples and lists alike).
 */
final class PyLiteral {
    private final String s;
    private int pos;

    private PyLiteral(String s) { this.s = s; }

    /** Parses one literal that must span the whole text (surrounding whitespace aside). */
    static Object parse(String text) {
        PyLiteral p = new PyLiteral(text);
        Object v = p.value();
        p.skipSpace();
        if (p.pos != p.s.length()) throw p.error("unexpected text after the literal");
        return v;
    }

    private Object value() {
        skipSpace();
        if (pos >= s.length()) throw error("unexpected end of header");
        char c = s.charAt(pos);
        return switch (c) {
            case '{' -> dict();
            case '(' -> sequence('(', ')');
            case '[' -> sequence('[', ']');
            case '\'', '"' -> string();
            default -> {
                if (c == '-' || c == '+' || Character.isDigit(c)) yield integer();
                yield word();
            }
        };
    }

    private Map<String, Object> dict() {
        expect('{');
        Map<String, Object> m = new LinkedHashMap<>();
        while (true) {
            skipSpace();
            if (peek('}')) { pos++; return Collections.unmodifiableMap(m); }
            Object key = value();
            if (!(key instanceof String k)) throw error("dict keys must be strings, got " + key);
            skipSpace();
            expect(':');
            Object v = value();
            if (m.containsKey(k)) throw error("key '" + k + "' appears twice");
            m.put(k, v);
            skipSpace();
            if (peek(',')) pos++;
            else if (!peek('}')) throw error("expected ',' or '}'");
        }
    }

    private List<Object> sequence(char open, char close) {
        expect(open);
        List<Object> l = new ArrayList<>();
        while (true) {
            skipSpace();
            if (peek(close)) { pos++; return Collections.unmodifiableList(l); }
            l.add(value());
            skipSpace();
            if (peek(',')) pos++;
            else if (!peek(close)) throw error("expected ',' or '" + close + "'");
        }
    }

    private String string() {
        char quote = s.charAt(pos++);
        StringBuilder b = new StringBuilder();
        while (pos < s.length()) {
            char c = s.charAt(pos++);
            if (c == quote) return b.toString();
            if (c == '\\') {
                if (pos >= s.length()) break;
                char e = s.charAt(pos++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case '0' -> b.append('\0');
                    default -> b.append(e); // \\, \', \" and anything else: the character itself
                }
            } else {
                b.append(c);
            }
        }
        throw error("unterminated string");
    }

    private Long integer() {
        int start = pos;
        if (peek('-') || peek('+')) pos++;
        while (pos < s.length() && Character.isDigit(s.charAt(pos))) pos++;
        // Python 2 era files may carry an 'L' suffix on longs.
        int end = pos;
        if (pos < s.length() && (s.charAt(pos) == 'L' || s.charAt(pos) == 'l')) pos++;
        String digits = s.substring(start, end);
        try {
            return Long.parseLong(digits.startsWith("+") ? digits.substring(1) : digits);
        } catch (NumberFormatException e) {
            throw error("'" + digits + "' is not an integer that fits in 64 bits");
        }
    }

    private Object word() {
        int start = pos;
        while (pos < s.length() && Character.isLetterOrDigit(s.charAt(pos))) pos++;
        String w = s.substring(start, pos);
        return switch (w) {
            case "True" -> Boolean.TRUE;
            case "False" -> Boolean.FALSE;
            case "None" -> null;
            default -> {
                pos = start;
                throw error("unexpected " + (w.isEmpty() ? "'" + s.charAt(pos) + "'" : "word '" + w + "'"));
            }
        };
    }

    private void skipSpace() {
        while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) pos++;
    }

    private boolean peek(char c) { return pos < s.length() && s.charAt(pos) == c; }

    private void expect(char c) {
        if (!peek(c)) throw error("expected '" + c + "'");
        pos++;
    }

    private NpyException error(String why) {
        int from = Math.max(0, pos - 20), to = Math.min(s.length(), pos + 20);
        return new NpyException("bad .npy header at character " + pos + ": " + why + " (near \"" + s.substring(from, to) + "\")");
    }
}
