package dev.sparkmoe.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs {@code moe} in-process and captures its exit code and streams. */
final class CliHarness {
    record Result(int code, String out, String err) {
        @Override public String toString() { return "exit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err; }
    }

    private CliHarness() {}

    static Result moe(Object... args) {
        String[] a = new String[args.length];
        for (int i = 0; i < args.length; i++) a[i] = String.valueOf(args[i]);
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = MoeCli.execute(new PrintWriter(out), new PrintWriter(err), a);
        return new Result(code, out.toString(), err.toString());
    }
}
