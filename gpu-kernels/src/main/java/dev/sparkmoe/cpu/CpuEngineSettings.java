package dev.sparkmoe.cpu;

import dev.sparkmoe.config.Setting;
import dev.sparkmoe.config.Settings;

/** The settings of the CPU engine, declared once. */
public final class CpuEngineSettings {
    private CpuEngineSettings() {}

    public static final Setting<Long> RESIDENT_WEIGHT_BYTES = Settings.bytesSetting("sparkmoe.cpu.residentWeightBytes",
            "Off-heap (malloc) memory the CPU engine may fill with expert weights converted to fp32 once at load. "
                    + "The shared expert, then routed experts in index order, stay resident while they fit; the rest are "
                    + "converted again on every forward (slow, but any layer runs: DeepSeek-V3 needs about 45 GB in fp32). "
                    + "Not part of the Java heap (-Xmx). The budget is per engine (one MoE layer): a process holding "
                    + "several layers needs their sum.",
            8L << 30);

    public static final Setting<Long> COMBINE_BUFFER_BYTES = Settings.bytesSetting("sparkmoe.cpu.combineBufferBytes",
            "Heap memory for the per-(token, choice) expert outputs of one pass before they are summed in selection "
                    + "order; a forward over more tokens than fit runs as several passes.",
            256L << 20);
}
