package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.CheckpointException;
import dev.sparkmoe.engine.MoeEngineException;
import dev.sparkmoe.model.MoeConfigException;
import dev.sparkmoe.npy.NpyException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.ScopeType;

import java.io.PrintWriter;

/**
 * {@code moe}: the command-line entry point ({@code scripts/moe}). Exit codes: 0 success, 1 a runtime error (one
 * line naming the cause; the stack trace too with {@code --verbose}), 2 a usage error.
 */
@Command(name = "moe",
        mixinStandardHelpOptions = true,
        versionProvider = MoeCli.Version.class,
        description = "Mixture-of-experts layers of Hugging Face checkpoints (Mixtral, Qwen2/3-MoE, DeepSeek-V3) on CPU or GPU.",
        subcommands = {GenerateCommand.class, GenInputCommand.class, InspectCommand.class, RunCommand.class,
                BenchCommand.class, CommandLine.HelpCommand.class})
public final class MoeCli implements Runnable {
    public static final int EXIT_OK = 0;
    public static final int EXIT_RUNTIME_ERROR = 1;
    public static final int EXIT_USAGE = CommandLine.ExitCode.USAGE;

    @Option(names = "--verbose", scope = ScopeType.INHERIT, description = "Print stack traces of errors.")
    boolean verbose;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required (generate, gen-input, inspect, run, bench)");
    }

    public static void main(String[] args) {
        int code;
        try {
            code = execute(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
        } catch (OutOfMemoryError e) {
            System.err.println("moe: out of memory (" + e.getMessage() + "); give the JVM more, e.g. MOE_JAVA_OPTS=-Xmx32g");
            code = EXIT_RUNTIME_ERROR;
        }
        System.exit(code);
    }

    /** Runs one command line with the given streams; returns the exit code. */
    public static int execute(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new MoeCli());
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler(new ErrorReporter());
        cl.setOverwrittenOptionsAllowed(true); // the last of a repeated option wins, as scripts that append overrides expect
        try {
            return cl.execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** Reports a failed command in one line naming the cause; the stack trace only with --verbose. */
    static final class ErrorReporter implements IExecutionExceptionHandler {
        @Override
        public int handleExecutionException(Exception ex, CommandLine cl, ParseResult parsed) {
            PrintWriter err = cl.getErr();
            err.println(cl.getCommandSpec().qualifiedName() + ": error: " + describe(ex));
            if (verbose(parsed)) ex.printStackTrace(err);
            err.flush();
            return EXIT_RUNTIME_ERROR;
        }

        static String describe(Throwable ex) {
            boolean expected = ex instanceof CliException || ex instanceof CheckpointException || ex instanceof NpyException
                    || ex instanceof MoeConfigException || ex instanceof MoeEngineException;
            String msg = ex.getMessage() == null ? "" : ex.getMessage();
            if (expected) return msg;
            // Not one of ours: say what it is, so a bug report has something to go on.
            return ex.getClass().getName() + (msg.isEmpty() ? "" : ": " + msg) + " (rerun with --verbose for the stack trace)";
        }

        private static boolean verbose(ParseResult parsed) {
            for (ParseResult p = parsed; p != null; p = p.subcommand()) {
                if (p.hasMatchedOption("--verbose")) return true;
            }
            return false;
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override public String[] getVersion() {
            String v = MoeCli.class.getPackage().getImplementationVersion();
            return new String[] {"sparkmoe moe " + (v == null ? "(development build)" : v)};
        }
    }
}
