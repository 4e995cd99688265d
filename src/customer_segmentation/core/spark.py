"""The Spark session: the active one on Databricks, a local Delta-enabled one elsewhere."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from .settings import on_databricks

JARS_DIR_ENV = "CUSTOMER_SEGMENTATION_JARS_DIR"
CLASS_ARCHIVE_ENV = "CUSTOMER_SEGMENTATION_CLASS_ARCHIVE"
DELTA_CONFIGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def get_spark(state_root: str | Path = ".local", verbose: bool = False) -> SparkSession:
    """The running session if there is one (Databricks, tests), else a new local session."""
    # PySpark logs every failed query's context to stderr; the product reports errors itself.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.INFO if verbose else logging.CRITICAL)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    return local_session(Path(state_root), verbose=verbose)


def _delta_jars(state: Path) -> list[str]:
    """Delta jars fetched by `make` (see Makefile); empty if they are not there."""
    jars_dir = os.environ.get(JARS_DIR_ENV) or str(state / "jars")
    if not Path(jars_dir).is_dir():
        return []
    from importlib.metadata import version

    delta_version = version("delta-spark")
    wanted = [Path(jars_dir) / f"{name}-{delta_version}.jar" for name in ("delta-spark_2.13", "delta-storage")]
    return [str(jar) for jar in wanted] if all(jar.is_file() for jar in wanted) else []


def class_sharing_options(record_to: Path | None = None) -> list[str]:
    """JVM options for class-data sharing: record the classes loaded into `record_to` when the JVM
    exits, or start from the archive named by CUSTOMER_SEGMENTATION_CLASS_ARCHIVE if it exists.

    A fresh JVM spends many CPU seconds of a local run loading and verifying Spark's, Delta's and
    MLlib's classes; mapped from an archive they are ready at once (measured in BENCHMARKS.md).
    An archive from another JDK or class path is ignored by the JVM, silenced here.
    """
    quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    if record_to is not None:
        return [f"-XX:ArchiveClassesAtExit={record_to}", *quiet]
    archive = os.environ.get(CLASS_ARCHIVE_ENV)
    return [f"-XX:SharedArchiveFile={archive}", *quiet] if archive and Path(archive).is_file() else []


def local_session(state_root: Path, verbose: bool = False, record_classes_to: Path | None = None) -> SparkSession:
    """Local Spark with Delta; warehouse, metastore and logs all under `state_root`.

    The Hive metastore (embedded Derby) makes tables persist between processes: a second
    process sees the tables the first one created, at <state_root>/warehouse/<schema>.db/<table>.
    """
    state = state_root.resolve()
    state.mkdir(parents=True, exist_ok=True)
    _remove_unfinished_metastore(state / "metastore" / "metastore_db")
    log4j = Path(__file__).with_name("log4j2.properties")
    java_options = " ".join([
        f"-Dderby.system.home={state / 'metastore'}",
        f"-Dlog4j.configurationFile=file:{log4j}",
        f"-Dcustomer_segmentation.log.level={'warn' if verbose else 'error'}",
        # A local run is a short-lived JVM whose JIT compiler takes a large share of the CPU, most
        # of it in the optimising C2 compiler. Parallel GC costs less CPU than G1 on a small heap;
        # higher compile thresholds leave rarely-run code to the quicker tier; Spark's generated
        # code often exceeds HotSpot's 8,000-byte limit, above which a method is never compiled and
        # stays interpreted; shallower inlining makes each C2 compilation cheaper. Measured in
        # BENCHMARKS.md.
        "-XX:+UseParallelGC -XX:CompileThresholdScaling=3 -XX:-DontCompileHugeMethods",
        "-XX:MaxInlineLevel=6 -XX:FreqInlineSize=100 -XX:InlineSmallCode=1000",
        # Hadoop's local file system runs a command for every file it creates (chmod) and every
        # link it checks (readlink): about a thousand a job. vfork starts each for less than the
        # default posix_spawn, which runs a helper program first.
        "-Djdk.lang.Process.launchMechanism=VFORK",
        *class_sharing_options(record_classes_to),
    ])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("customer-segmentation")
        .master(os.environ.get("CUSTOMER_SEGMENTATION_SPARK_MASTER", "local[*]"))
        .config("spark.driver.memory", os.environ.get("CUSTOMER_SEGMENTATION_DRIVER_MEMORY", "3g"))
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.sql.warehouse.dir", str(state / "warehouse"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={state / 'metastore' / 'metastore_db'};create=true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Small local machines: few shuffle partitions (AQE coalesces further) and a small
        # Delta log replay keep short jobs short.
        .config("spark.sql.shuffle.partitions", os.environ.get("CUSTOMER_SEGMENTATION_SHUFFLE_PARTITIONS", "8"))
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.streaming.stopActiveRunOnRestart", "true")
        # A local folder is listed on the driver in milliseconds; above the default threshold (32
        # paths, as each micro-batch of landing files is) Spark lists it with a job of a task a path.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        # Files split into at least four tasks a core: two cores no longer wait on one large last task.
        .config("spark.sql.files.minPartitionNum", str(4 * (os.cpu_count() or 1)))
        # Generated classes are kept by their code: a job compiles about a thousand distinct ones
        # (gold about 400), and with the default 100 a task compiled again classes it had evicted.
        .config("spark.sql.codegen.cache.maxEntries", "1000")
        # Delta's default log store for local paths commits through Hadoop's FileContext, whose
        # rename checks both paths for links with readlink. On a local disk that rename is a check
        # and a rename either way; LocalLogStore does the same through FileSystem, under a lock
        # per JVM, without the readlink commands.
        .config("spark.delta.logStore.file.impl", "io.delta.storage.LocalLogStore")
        .enableHiveSupport()
    )
    for key, value in DELTA_CONFIGS.items():
        builder = builder.config(key, value)
    jars = _delta_jars(state)
    if jars:
        # On the driver's class path, where class-data sharing can archive them (not from the
        # class loader of spark.jars); spark.jars still ships them to the executors of a cluster master.
        builder = (builder.config("spark.driver.extraClassPath", os.pathsep.join(jars))
                   .config("spark.jars", ",".join(jars)))
    else:
        from delta import configure_spark_with_delta_pip

        builder = configure_spark_with_delta_pip(builder)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN" if verbose else "ERROR")
    return spark


def _remove_unfinished_metastore(database: Path) -> None:
    """A run killed while Derby was creating the metastore (the first seconds on a new state) can
    leave its folder without `service.properties`: Derby can neither boot it nor create it again
    ("Directory ... already exists"), so every later run failed. Such a folder never recorded a
    table: removing it loses nothing. The caller holds the state's lock, so no run is creating it."""
    if database.is_dir() and not (database / "service.properties").exists():
        shutil.rmtree(database)


@contextmanager
def interpreted_expressions(spark: SparkSession, interpreted: bool) -> Iterator[None]:
    """Within the block, expressions are interpreted instead of compiled to Java when `interpreted`.

    A query over little data spends most of its time generating and compiling code for its plan
    (in a warm job over 60 customers, 40% of the JVM's CPU samples): interpreted, the same
    expressions give the same values without that fixed cost, and are slower per row.
    """
    if not interpreted:  # the session untouched (a serverless cluster refuses most settings)
        yield
        return
    confs = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
    before = {key: spark.conf.get(key, None) for key in confs}
    for key, value in confs.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def stop_local_jvm(spark: SparkSession, timeout_seconds: float = 600) -> None:
    """Stop the session and wait until its JVM has exited (and written its class archive, if asked to)."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    spark.stop()
    gateway.shutdown()
    gateway.proc.stdin.close()  # the JVM exits when its stdin closes
    gateway.proc.wait(timeout=timeout_seconds)
    SparkContext._gateway = SparkContext._jvm = None
