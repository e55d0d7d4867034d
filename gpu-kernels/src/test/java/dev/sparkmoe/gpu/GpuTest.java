package dev.sparkmoe.gpu;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * A GPU test class: tagged {@code gpu} (CI excludes the tag; {@code scripts/gpu-test.sh} runs it), skipped with the
 * reason printed where the GPU engine cannot run, and failed when CUDA handles are still open or were leaked after
 * its tests ({@link GpuTestSupport}).
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Tag("gpu")
@ExtendWith(GpuTestSupport.class)
public @interface GpuTest {}
