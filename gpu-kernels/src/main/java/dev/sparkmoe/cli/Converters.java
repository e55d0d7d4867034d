package dev.sparkmoe.cli;

import dev.sparkmoe.checkpoint.DType;
import dev.sparkmoe.engine.Device;
import dev.sparkmoe.engine.Precision;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** picocli converters for the option types of the {@code moe} commands; a bad value is a usage error (exit 2). */
final class Converters {
    private Converters() {}

    static final class WeightDType implements ITypeConverter<DType> {
        @Override public DType convert(String s) {
            try {
                return DType.fromUserName(s);
            } catch (RuntimeException e) {
                throw new TypeConversionException("'" + s + "' is not one of bf16, f32, f16, fp8");
            }
        }
    }

    static final class DeviceName implements ITypeConverter<Device> {
        @Override public Device convert(String s) {
            try {
                return Device.parse(s);
            } catch (RuntimeException e) {
                throw new TypeConversionException("'" + s + "' is not one of auto, cpu, gpu");
            }
        }
    }

    static final class PrecisionName implements ITypeConverter<Precision> {
        @Override public Precision convert(String s) {
            try {
                return Precision.parse(s);
            } catch (RuntimeException e) {
                throw new TypeConversionException("'" + s + "' is not one of native, fp8");
            }
        }
    }

    /** Bytes: a plain count, or with a unit: 500MB, 5GB (powers of 1000), 512MiB, 4GiB (powers of 1024), also K/M/G. */
    static final class ByteSize implements ITypeConverter<Long> {
        private static final Pattern FORMAT = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([kmgt]?)(i?)b?");

        @Override public Long convert(String s) {
            Matcher m = FORMAT.matcher(s.trim().toLowerCase(Locale.ROOT));
            if (!m.matches()) throw new TypeConversionException("'" + s + "' is not a byte size such as 5000000000, 500MB or 2GiB");
            if (m.group(2).isEmpty() && !m.group(3).isEmpty()) throw new TypeConversionException("'" + s + "' has 'i' without a unit");
            double base = m.group(3).isEmpty() ? 1000 : 1024;
            int power = m.group(2).isEmpty() ? 0 : "kmgt".indexOf(m.group(2)) + 1;
            double bytes = Double.parseDouble(m.group(1)) * Math.pow(base, power);
            if (bytes < 1 || bytes > Long.MAX_VALUE / 2) throw new TypeConversionException("byte size '" + s + "' is out of range");
            return (long) bytes;
        }
    }
}
