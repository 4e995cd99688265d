"""Command line: `python -m customer_segmentation <command>`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.console import format_table, say
from ..core.errors import PipelineError, UserError
from ..core.settings import PARAMS, Settings

SYNTHETIC_CUSTOMERS = 1000
CLASS_ARCHIVE_CUSTOMERS = 100


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (job parameters of the same name on Databricks)")
    for param in PARAMS:
        group.add_argument(f"--{param.name.replace('_', '-')}", dest=param.name, metavar="VALUE",
                           help=f"{param.help} (default: {param.default or 'none'})".replace("%", "%%"))


def settings_from_args(args: argparse.Namespace) -> Settings:
    values = {param.name: getattr(args, param.name, None) for param in PARAMS}
    if getattr(args, "source", None):
        values["landing_path"] = args.source
    return Settings.from_params(values)


def _prepare_synthetic_landing(settings: Settings) -> None:
    """No source given: generate the embedded synthetic data once, next to the local state."""
    from .generate import generate

    landing = Path(settings.landing_path)
    if landing.is_dir() and any(landing.iterdir()):
        return
    manifest = generate(landing.parent, customers=SYNTHETIC_CUSTOMERS, seed=settings.seed)
    say(f"generated {manifest['lines']:,} synthetic transaction lines in {manifest['files']} files "
        f"under {landing}")


def _start(settings: Settings, args: argparse.Namespace):
    from ..core.spark import get_spark

    return get_spark(settings.state_root, verbose=args.verbose)


def _as_publish(spark, settings: Settings):
    """The report and the summary read what publish reads (aggregates, customers): evaluated as it is."""
    from ..core.spark import interpreted_expressions
    from .jobs import interprets

    return interpreted_expressions(spark, interprets(settings, "publish"))


def _print_summary(spark, settings: Settings, report_path: Path | None) -> None:
    from ..models import tracking
    from .jobs import table_summary

    with _as_publish(spark, settings):
        rows = table_summary(spark, settings)
        metrics = settings.tables.clustering_metrics
        champion = (spark.table(metrics).where("is_champion").orderBy("as_of_date", ascending=False).first()
                    if metrics in dict(rows) else None)  # the summary lists the tables that exist
    say("")
    say(format_table(["table", "rows"], [[name, count] for name, count in rows]))
    if champion:
        say("")
        say(f"champion: {champion['algorithm']} k={champion['k']} (as of {champion['as_of_date']}): "
            f"silhouette {champion['silhouette_sq_euclidean']:.3f}, Davies-Bouldin {champion['davies_bouldin']:.3f}, "
            f"Calinski-Harabasz {champion['calinski_harabasz']:,.1f}")
    state = Path(settings.state_root).resolve()
    say("")
    if report_path:
        say(f"report:      {report_path}")
    say(f"local state: {state}")
    say(f"  tables:      {state / 'warehouse'}/<schema>.db/<table> (Delta)")
    say(f"  checkpoints: {Path(settings.checkpoints).resolve()}")
    say(f"  MLflow UI:   {tracking.ui_command(settings)}  (then open http://127.0.0.1:5000)")
    say(f"  SQL:         .venv/bin/python -m customer_segmentation sql \"SELECT * FROM {settings.gold_schema}"
        f".segment_summary\"")


def cmd_run(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from ..ingest.source_profiles import load_profile
    from ..ingest.task import check_landing_folder
    from ..models import tracking
    from .jobs import JOB_ORDER, reset_local_state_if_source_changed, run_job, task_module

    settings = settings_from_args(args)
    if not args.source and settings.landing_path == Settings().landing_path:
        _prepare_synthetic_landing(settings)
    check_landing_folder(settings.landing_path, "source" if args.source else "landing_path")
    load_profile(settings.source_profile)
    tasks = JOB_ORDER[JOB_ORDER.index(args.start_at):]
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The JVM takes about 2 s to start, the task modules about 1.5 s to import: side by side.
        starting = pool.submit(_start, settings, args)
        for name in tasks:
            task_module(name)
        tracking.create_local_store_in_background(settings.mlflow_dir)
        spark = starting.result()
    reset_local_state_if_source_changed(spark, settings)
    run_job(spark, settings, tasks)
    _print_summary(spark, settings, None if args.no_report else _write_report(spark, settings))
    return 0


def cmd_class_archive(args: argparse.Namespace) -> int:
    """Run the whole job on a little generated data and record the classes its JVM loads."""
    import os
    import tempfile

    from ..core.spark import CLASS_ARCHIVE_ENV, local_session, stop_local_jvm
    from .generate import generate
    from .jobs import run_job

    target = args.out or os.environ.get(CLASS_ARCHIVE_ENV)
    if not target:
        raise UserError(f"class-archive: give --out <file>, or set {CLASS_ARCHIVE_ENV}")
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    recording = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "landing", customers=CLASS_ARCHIVE_CUSTOMERS, seed=1)
        settings = Settings.from_params({"state_root": str(Path(tmp) / "state"),
                                         "landing_path": str(Path(tmp) / "landing" / "transactions"),
                                         "k_min": "2", "k_max": "3"})
        spark = local_session(Path(settings.state_root), verbose=args.verbose, record_classes_to=recording)
        # Compiled as a large source is: the classes that generate and compile code are the ones worth mapping.
        run_job(spark, settings, interpret_small_sources=False)
        stop_local_jvm(spark)
    if not recording.is_file():
        raise PipelineError(f"class-archive: the JVM exited without writing {recording}")
    recording.replace(target)  # atomic: a run starting now sees the old archive or the whole new one
    say(f"class archive written to {target} ({target.stat().st_size / 2**20:,.0f} MiB)")
    return 0


def _write_report(spark, settings: Settings) -> Path:
    from ..report import page

    say("[report] started")
    with _as_publish(spark, settings):
        path = page.build(spark, settings)
    say(f"[report] written to {path}")
    return path


def cmd_report(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    spark = _start(settings, args)
    if not spark.catalog.tableExists(settings.tables.segment_profiles):
        raise UserError(f"{settings.tables.segment_profiles} does not exist yet: run the job first "
                        "(make run, or python -m customer_segmentation run)")
    _write_report(spark, settings)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from pyspark.errors import PySparkException

    settings = settings_from_args(args)
    if bool(args.query) == bool(args.file):
        raise UserError("sql: give either a query or --file <path>, not both")
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"sql: file {args.file} does not exist")
        text = path.read_text(encoding="utf-8")
    else:
        text = args.query
    statement = resolve_table_placeholders(text, settings)
    spark = _start(settings, args)
    try:
        result = spark.sql(statement)
        rows = result.limit(args.limit + 1).collect()
    except PySparkException as error:
        raise UserError("query failed: " + str(error).strip().splitlines()[0]) from None
    say(format_table(result.columns, [list(r) for r in rows[:args.limit]]))
    more = " (more rows not shown; use --limit)" if len(rows) > args.limit else ""
    say(f"{min(len(rows), args.limit)} row(s){more}")
    return 0


def resolve_table_placeholders(text: str, settings: Settings) -> str:
    """${catalog}, ${bronze}, ${silver} and ${gold} in a query become the configured (validated) names,
    so a saved query runs unchanged locally and on Databricks."""
    schemas = {"bronze": settings.bronze_schema, "silver": settings.silver_schema, "gold": settings.gold_schema}
    for layer, schema in schemas.items():
        text = text.replace("${" + layer + "}", f"{settings.catalog}.{schema}")
    return text.replace("${catalog}", settings.catalog).rstrip().rstrip(";")


def cmd_task(args: argparse.Namespace) -> int:
    from .jobs import run_task

    settings = settings_from_args(args)
    spark = _start(settings, args)
    run_task(spark, settings, args.name)
    return 0


def _purchase_process(text: str):
    """`r=0.3,alpha=5` -> a PurchaseProcess with those parameters and the defaults for the rest."""
    from dataclasses import fields

    from .generate import PurchaseProcess

    known = [f.name for f in fields(PurchaseProcess)]
    values = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in known:
            raise argparse.ArgumentTypeError(f"unknown parameter {name!r}; known: {', '.join(known)}")
        try:
            values[name] = int(value) if name == "acquisition_days" else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={value!r} is not a number") from None
        if values[name] <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be positive, not {value}")
    return PurchaseProcess(**values)


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import customers_for_lines, generate

    customers = args.customers or (customers_for_lines(args.lines) if args.lines else SYNTHETIC_CUSTOMERS)
    manifest = generate(args.out, customers=customers, seed=args.seed, optional_sources=args.with_optional_sources,
                        process=args.purchase_process)
    say(f"wrote {manifest['lines']:,} lines in {manifest['files']} files to {manifest['landing_path']} "
        f"({manifest['customers']:,} customers, seed {manifest['seed']})")
    if "optional_sources" in manifest:
        counts = manifest["optional_sources"]
        say("optional sources: " + ", ".join(f"{Path(args.out) / s}/ ({counts[s]:,} rows)"
                                             for s in ("customers", "engagement", "products")))
    if args.purchase_process:
        say("purchases drawn from BG/NBD and Gamma-Gamma with " + ", ".join(
            f"{k} = {v:g}" for k, v in manifest["purchase_process"].items())
            + f": {Path(args.out) / 'planted_purchases.csv'}")
    say(f"planted behaviours: {Path(args.out) / 'planted_segments.csv'}; "
        f"trap counts: {Path(args.out) / 'manifest.json'}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from . import workspace

    workspace.upload(workspace.client(args.profile), args.volume, args.folder)
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    from . import workspace

    succeeded = workspace.trigger(workspace.client(args.profile), args.target, poll_seconds=args.poll_seconds)
    return 0 if succeeded else 1


def cmd_check_bundle(args: argparse.Namespace) -> int:
    from .bundle_check import check_bundle

    problems = check_bundle(args.root, args.target)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        say(f"bundle at {Path(args.root).resolve()} is valid for target {args.target}")
    return 1 if problems else 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .jobs import JOB_ORDER

    parser = argparse.ArgumentParser(
        prog="python -m customer_segmentation",
        description="Customer segmentation lakehouse: bronze/silver/gold Delta tables, RFM features, "
                    "MLlib segments tracked in MLflow.",
    )
    parser.add_argument("--verbose", action="store_true", help="show Spark's own warnings (default: errors only)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    run = commands.add_parser("run", help="run the whole job locally, task by task",
                              description="Run the job's tasks in order: " + " -> ".join(JOB_ORDER) + ".")
    run.add_argument("--source", metavar="DIR",
                     help="folder of transaction files to ingest (default: generated synthetic data)")
    run.add_argument("--no-report", action="store_true", help="skip the HTML report at the end (default: write it)")
    run.add_argument("--from", dest="start_at", choices=JOB_ORDER, default=JOB_ORDER[0], metavar="TASK",
                     help="start at this task and run the ones after it, like a repair run on Databricks: "
                          "resumes a job that failed or was stopped there (default: %(default)s)")
    _add_settings_flags(run)
    run.set_defaults(handler=cmd_run)

    task = commands.add_parser("task", help="run one task of the job",
                               description="Run one task of the job against the current tables.")
    task.add_argument("name", choices=JOB_ORDER, help="the task to run")
    _add_settings_flags(task)
    task.set_defaults(handler=cmd_task)

    generate = commands.add_parser("generate", help="write synthetic landing data shaped like the UCI files",
                                   description="Write synthetic transaction files (one CSV per day) with the "
                                               "traps of the real data and planted customer behaviours.")
    generate.add_argument("--out", default=".local/landing", help="output folder (default: .local/landing)")
    size = generate.add_mutually_exclusive_group()
    size.add_argument("--customers", type=_positive_int,
                      help=f"number of customers (default: {SYNTHETIC_CUSTOMERS})")
    size.add_argument("--lines", type=_positive_int, help="approximate number of lines to write")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    generate.add_argument("--with-optional-sources", action="store_true",
                          help="also write customers/, engagement/ and products/ next to transactions/ "
                               "(default: transactions only)")
    generate.add_argument("--purchase-process", nargs="?", const="", type=_purchase_process, metavar="NAME=VALUE,...",
                          help="every customer buys as BG/NBD and Gamma-Gamma assume, with the papers' CDNOW "
                               "parameters or those given (r, alpha, a, b, p, q, gamma, acquisition_days), so that "
                               "the lifetime-value fit can be checked against the truth")
    generate.set_defaults(handler=cmd_generate)

    report = commands.add_parser("report", help="write the HTML segment report from the current tables",
                                 description="Write a self-contained HTML report (<state_root>/report/index.html) "
                                             "from the gold tables and the figures logged to MLflow.")
    _add_settings_flags(report)
    report.set_defaults(handler=cmd_report)

    sql = commands.add_parser("sql", help="run Spark SQL over the local tables and print the result",
                              description="Run a Spark SQL query over the local bronze, silver and gold tables. "
                                          "Tables are addressed as on Databricks (catalog.schema.table; locally "
                                          "the catalog is spark_catalog, so gold.segment_profiles also works). "
                                          "${catalog}, ${bronze}, ${silver} and ${gold} are replaced by the "
                                          "configured names.")
    sql.add_argument("query", nargs="?", help="the query, e.g. \"SELECT * FROM gold.segment_summary\"")
    sql.add_argument("--file", help="run the query saved in this file (e.g. queries/segment_sizes.sql)")
    sql.add_argument("--limit", type=_positive_int, default=50, help="rows to print at most (default: 50)")
    _add_settings_flags(sql)
    sql.set_defaults(handler=cmd_sql)

    upload = commands.add_parser("upload", help="copy landing files into a Unity Catalog volume (databricks-sdk)",
                                 description="Upload every file of a local folder into a volume folder, "
                                             "skipping files already there.")
    upload.add_argument("--volume", required=True, metavar="PATH",
                        help="volume folder, e.g. /Volumes/main/customer_segmentation_bronze/landing/transactions")
    upload.add_argument("folder", help="local folder of landing files")
    upload.add_argument("--profile", help="Databricks config profile (default: the SDK's default resolution)")
    upload.set_defaults(handler=cmd_upload)

    trigger = commands.add_parser("trigger", help="run the deployed job, wait, and report each task",
                                  description="Find the job deployed by the bundle for a target, run it, wait for "
                                              "it to finish and print each task's state and duration. Exits "
                                              "non-zero if the run failed.")
    trigger.add_argument("--target", default="dev", choices=("dev", "prod"), help="bundle target (default: dev)")
    trigger.add_argument("--profile", help="Databricks config profile (default: the SDK's default resolution)")
    trigger.add_argument("--poll-seconds", type=float, default=15.0, help="seconds between status checks (default: 15)")
    trigger.set_defaults(handler=cmd_trigger)

    archive = commands.add_parser("class-archive", help="record the JVM classes a local run loads, for faster starts",
                                  description="Run the whole job on a little generated data and write the classes "
                                              "its JVM loaded to a class-data sharing archive; local runs then start "
                                              "from it when $CUSTOMER_SEGMENTATION_CLASS_ARCHIVE names it (make does).")
    archive.add_argument("--out", help="archive file (default: $CUSTOMER_SEGMENTATION_CLASS_ARCHIVE)")
    archive.set_defaults(handler=cmd_class_archive)

    check = commands.add_parser("check-bundle", help="validate databricks.yml and resources/*.yml offline",
                                description="Check the bundle's job, schemas, volumes, experiment and model "
                                            "definitions, task graph, notebooks, widgets and runtime, offline.")
    check.add_argument("--target", default="dev", help="bundle target (default: dev)")
    check.add_argument("--root", default=".", help="folder holding databricks.yml (default: .)")
    check.set_defaults(handler=cmd_check_bundle)
    # A flag is spelt out in full: `task silver --source x` must not be taken for --source-profile.
    for each in (parser, *commands.choices.values()):
        each.allow_abbrev = False
    return parser


# Commands that open the local lakehouse (Spark's metastore, the tables, the MLflow store).
LOCAL_STATE_COMMANDS = ("run", "task", "report", "sql")


def main(argv: list[str] | None = None) -> int:
    from contextlib import nullcontext

    from ..core.settings import on_databricks
    from .state_lock import holding

    args = build_parser().parse_args(argv)
    try:
        locking = args.command in LOCAL_STATE_COMMANDS and not on_databricks()
        with (holding(settings_from_args(args).state_root, " ".join(argv or sys.argv[1:])[:200])
              if locking else nullcontext()):
            return args.handler(args)
    except (UserError, PipelineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
