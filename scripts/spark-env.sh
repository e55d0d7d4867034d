# Sourced by the Spark scripts: the repository root, the Java options Spark 4 needs on Java 17, and the run classpath
# (examples jar + every dependency, Spark included: Spark is 'provided' for spark-submit, so it is added here).
# Builds the project first when the classpath file or a jar is missing, or a source is newer than the jars.

SPARKMOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# These scripts run Spark on this one machine: bind and advertise loopback unless told otherwise.
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"

# Same list as spark.add.opens in the parent pom (Spark's own launcher adds these; we run Spark in-process).
SPARKMOE_ADD_OPENS="--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED \
--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED \
--add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED \
--add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED \
--add-opens=java.base/java.io=ALL-UNNAMED"

sparkmoe_build_if_needed() {
    # A host without Maven (e.g. a GPU machine given a carried runtime) sets SPARKMOE_CLASSPATH itself: use it as is.
    if [[ -n "${SPARKMOE_CLASSPATH:-}" && "${SPARKMOE_PREBUILT:-0}" == 1 ]]; then export SPARKMOE_CLASSPATH; return 0; fi
    local cpfile="$SPARKMOE_ROOT/examples/target/classpath.txt"
    local jar
    jar=$(ls "$SPARKMOE_ROOT"/examples/target/examples-*.jar 2>/dev/null | grep -v -- '-tests.jar' | head -1 || true)
    local stale=""
    if [[ ! -f "$cpfile" || -z "$jar" ]]; then
        stale="not built yet"
    elif [[ -n "$(find "$SPARKMOE_ROOT"/gpu-kernels/src/main "$SPARKMOE_ROOT"/spark-module/src/main "$SPARKMOE_ROOT"/examples/src/main \
                 "$SPARKMOE_ROOT"/pom.xml "$SPARKMOE_ROOT"/*/pom.xml -newer "$jar" -type f 2>/dev/null | head -1)" ]]; then
        stale="sources changed since the last build"
    else
        while IFS= read -r -d ':' entry; do
            [[ -e "$entry" ]] || { stale="classpath entry $entry is missing"; break; }
        done < <(cat "$cpfile"; printf ':')
    fi
    if [[ -n "$stale" ]]; then
        echo "[sparkmoe] building the project ($stale): mvn -B -q -DskipTests package" >&2
        (cd "$SPARKMOE_ROOT" && { mvn -B -q -o -DskipTests package 2>/dev/null || mvn -B -q -DskipTests package; }) >&2 || {
            echo "[sparkmoe] build failed" >&2; return 1; }
    fi
    jar=$(ls "$SPARKMOE_ROOT"/examples/target/examples-*.jar | grep -v -- '-tests.jar' | head -1)
    SPARKMOE_CLASSPATH="$jar:$(cat "$cpfile")"
    export SPARKMOE_CLASSPATH
}

# Spark's jars alone (what a distribution's jars/ holds), from the build; call after sparkmoe_build_if_needed.
sparkmoe_spark_classpath() {
    local f="$SPARKMOE_ROOT/examples/target/spark-classpath.txt"
    [[ -f "$f" ]] || { echo "[sparkmoe] $f is missing: build with mvn -DskipTests package" >&2; return 1; }
    cat "$f"
}

# java with the run classpath, Spark's module flags and quiet Spark logging; extra JVM flags via SPARKMOE_JAVA_OPTS.
sparkmoe_java() {
    # shellcheck disable=SC2086
    java $SPARKMOE_ADD_OPENS -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$SPARKMOE_ROOT/scripts/spark-log4j2.properties" \
        ${SPARKMOE_JAVA_OPTS:-} -cp "$SPARKMOE_CLASSPATH" "$@"
}
