package dev.sparkmoe.examples;

import dev.sparkmoe.spark.MoeSparkConf;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Spark options shared by the example jobs. Under spark-submit the master and settings come from spark-submit;
 * run directly (scripts/run-example.sh), the default is local mode on loopback with every core.
 */
public final class SparkOptions {
    @Option(names = "--master", description = "Spark master (default: spark-submit's, else local[*])")
    String master;

    @Option(names = "--conf", description = "extra Spark setting key=value (repeatable)")
    Map<String, String> conf = new LinkedHashMap<>();

    public SparkSession session(String appName) {
        SparkConf defaults = new SparkConf(); // spark.* system properties, as spark-submit sets them
        SparkSession.Builder b = SparkSession.builder().appName(appName);
        boolean localDefault = master == null && !defaults.contains("spark.master");
        if (master != null) b.master(master);
        else if (localDefault) b.master("local[*]");
        if (localDefault || (master != null && master.startsWith("local"))) {
            setIfAbsent(b, defaults, "spark.driver.bindAddress", "127.0.0.1");
            setIfAbsent(b, defaults, "spark.driver.host", "127.0.0.1");
            setIfAbsent(b, defaults, "spark.ui.enabled", "false");
            setIfAbsent(b, defaults, "spark.ui.showConsoleProgress", "false");
        }
        setIfAbsent(b, defaults, "spark.serializer", "org.apache.spark.serializer.KryoSerializer");
        setIfAbsent(b, defaults, "spark.kryo.registrator", MoeSparkConf.KRYO_REGISTRATOR_CLASS);
        String plugins = conf.getOrDefault("spark.plugins", defaults.get("spark.plugins", ""));
        if (!plugins.contains(MoeSparkConf.PLUGIN_CLASS)) {
            b.config("spark.plugins", plugins.isEmpty() ? MoeSparkConf.PLUGIN_CLASS : plugins + "," + MoeSparkConf.PLUGIN_CLASS);
        }
        conf.forEach((k, v) -> { if (!k.equals("spark.plugins")) b.config(k, v); });
        return b.getOrCreate();
    }

    private void setIfAbsent(SparkSession.Builder b, SparkConf defaults, String key, String value) {
        if (!conf.containsKey(key) && !defaults.contains(key)) b.config(key, value);
    }
}
