package dev.sparkmoe.cli;

import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** Placeholder for {@code moe bench}; the GPU engine work replaces this class. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks MoE layers on the GPU (needs the GPU engine).")
final class BenchCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new CliException("moe bench needs the GPU engine, not in this build");
    }
}
