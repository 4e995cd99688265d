"""`make bench`: the whole job against its peers and the floor, on the same input, in one invocation.

For every size: generate (or reuse) the landing data; run the product's job from empty state and
right after it the floor (the least a Spark + Delta medallion pipeline does, timed per layer), both
`--repeat` times alternately; on the last run's state, bronze and silver once more on a few new
landing files (a daily incremental run, whose cost should follow the new lines, not the lines silver
holds); then the PySpark peer (the script a competent user writes: features cached before the k
loop) and the pandas + scikit-learn reference; on the real data the product once more with the
peer's model search (k-means alone, the peer's k range, one start), like for like. Each runs in its
own process; the harness records wall time (per task for the product), lines per second and the
peak resident memory of the whole process tree (the JVM included). Results
go to bench/results/<time>.json and the tables into BENCHMARKS.md between its result markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from customer_segmentation.ops.jobs import JOB_ORDER

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "online-retail" / "by-day"
WORK = REPO / ".local" / "bench"
RESULTS = REPO / "bench" / "results"
SIZES = {"real": None, "1m": 1_000_000, "10m": 10_000_000, "50m": 50_000_000}
# Many customers with few lines each, for train and publish as customers grow: every customer buys
# as the lifetime-value models assume (the generator's purchase process, about 3.3 lines a customer).
CUSTOMER_SIZES = {"100k-customers": 100_000, "1m-customers": 1_000_000}
REFERENCE_MEMORY_LIMIT = 18 * 1024 ** 3  # keeps an exhausted pandas run from taking the machine down
NOT_RUN = {"seconds": None, "peak_rss_gib": "-", "exit_code": None}  # a reference skipped by --product-only
# Reading the PSS of a 2-3 GB JVM costs the kernel about 55 ms, with the JVM's memory map locked:
# five samples a second took a quarter of a core of the two measured and slowed the JVM.
SAMPLE_SECONDS = 1.0
# The product's task behind each layer of the floor.
LAYERS = {"bronze": "bronze", "silver": "silver", "gold": "gold_features"}
TASK_LABELS = [{"gold_features": "gold", "lifetime_value": "ltv"}.get(t, t) for t in JOB_ORDER]
# The peer's model search (k-means alone, k from 2, one start) for a like-for-like run of the product
# on the real data: the rest of the job unchanged, so the two runs' gap is the model search's cost.
PEER_SEARCH = ("--algorithms", "kmeans", "--k-min", "2", "--kmeans-starts", "1")
PEER_SEARCH_LABEL = "real, the peer's search"
# New landing files (generated, another seed) for the incremental run after the full one.
INCREMENT_FILES = 10
INCREMENT_TASKS = ("bronze", "silver")


def _resident(process: psutil.Process) -> int:
    """Proportional set size: pages shared between processes count once over the tree. Plain RSS
    counts them in each: the JVM forks short-lived helpers (file permission commands) that share
    its whole heap until they exec, and a sample at that moment would count the heap twice."""
    try:
        return process.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return process.memory_info().rss


def measure(command: list[str], env: dict | None = None, memory_limit: int | None = None) -> dict:
    """Run a command; wall time, peak resident memory of its process tree, exit code and output.

    Also the peak per task (the last "[task] started" line printed before the sample) and, at the
    overall peak, the memory of each process of the tree, to tell the JVM from Python workers.
    """
    def limit():
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=limit)
    # A reader thread drains the pipe so a chatty child never blocks on a full buffer.
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    root = psutil.Process(process.pid)
    peak, peak_by_task, peak_processes, task, scanned = 0, {}, {}, "start", 0
    while process.poll() is None:
        time.sleep(SAMPLE_SECONDS)
        for line in output[scanned:]:
            found = re.match(r"\[(\w+)\] started", line)
            task = found.group(1) if found else task
        scanned = len(output)
        try:
            sizes = {f"{p.pid} {p.name()}": _resident(p) for p in [root, *root.children(recursive=True)]}
        except psutil.Error:
            continue
        total = sum(sizes.values())
        peak_by_task[task] = max(peak_by_task.get(task, 0), total)
        if total > peak:
            peak, peak_processes = total, sizes
    reader.join()
    gib = 1024 ** 3
    return {"seconds": round(time.perf_counter() - started, 2), "peak_rss_gib": round(peak / gib, 2),
            "peak_rss_gib_by_task": {t: round(v / gib, 2) for t, v in peak_by_task.items()},
            "processes_at_peak_gib": {p: round(v / gib, 2) for p, v in sorted(peak_processes.items(),
                                                                            key=lambda item: -item[1])[:6]},
            "exit_code": process.returncode, "output": "".join(output)}


def generated(name: str, amount: list[str], seed: int) -> Path:
    """The folder of generated landing data `name` (`amount`: the generator's size options), made
    unless a complete one (with its manifest, written last) is there from an earlier run."""
    folder = WORK / "data" / f"{name}-seed{seed}"
    if not (folder / "manifest.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "customer_segmentation", "generate", "--out", str(folder), *amount,
                        "--seed", str(seed)], cwd=REPO, check=True)
    return folder


def dataset(size: str, seed: int) -> tuple[Path, int]:
    if size == "real":
        return REAL_DATA, 541_909
    amount = (["--customers", str(CUSTOMER_SIZES[size]), "--purchase-process"] if size in CUSTOMER_SIZES
              else ["--lines", str(SIZES[size])])
    folder = generated(size, amount, seed)
    return folder / "transactions", json.loads((folder / "manifest.json").read_text())["lines"]


def landing_folder(data: Path, size: str) -> Path:
    """A landing folder of the bench's own for a size's runs, its files hard links to `data`'s: the
    incremental run adds files to it without touching the data."""
    folder = WORK / "landing" / size
    shutil.rmtree(folder, ignore_errors=True)
    for source in sorted(f for f in data.rglob("*") if f.is_file()):
        target = folder / source.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system
            shutil.copy2(source, target)
    return folder


def run_product(landing: Path, size: str, k_max: int, search: tuple[str, ...] = ()) -> dict:
    state = WORK / "state" / size
    shutil.rmtree(state, ignore_errors=True)
    result = measure([sys.executable, "-m", "customer_segmentation", "run", "--source", str(landing),
                      "--state-root", str(state), "--k-max", str(k_max), *search, "--no-report"])
    result["tasks"] = tasks_done(result["output"])
    result["customers"] = customers_built(result["output"])
    # The lifetime-value fit alone (aggregation to distinct summaries included): flat in lines.
    fit = re.search(r"^\[lifetime_value\] fitted on ([\d,]+) distinct summaries .* in ([\d.]+) s", result["output"],
                    re.MULTILINE)
    result["clv_fit"] = {"distinct_summaries": int(fit.group(1).replace(",", "")), "seconds": float(fit.group(2))} \
        if fit else None
    return result


def customers_built(output: str) -> int | None:
    """The customers gold built features for, from the task's "done" line."""
    return rows_added(output, "gold_features", "customer_features")


def tasks_done(output: str) -> dict[str, float]:
    """Each task's seconds, from its "done" line."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^\[(\w+)\] done in ([\d.]+) s", output, re.MULTILINE)}


def rows_added(output: str, task: str, table: str) -> int | None:
    """The rows `task` added to `table` (its last name part), from the task's "done" line."""
    found = re.search(rf"^\[{task}\] done .*\.{table} \+([\d,]+)", output, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


def run_increment(landing: Path, size: str, seed: int) -> dict:
    """Bronze and silver once more, each in its own process as a scheduled run starts them, after
    INCREMENT_FILES new files land beside the ones the full run ingested."""
    folder = generated("increment", ["--lines", "30000"], seed)
    for source in sorted((folder / "transactions").glob("*.csv"))[-INCREMENT_FILES:]:
        shutil.copy2(source, landing / f"increment-{source.name}")
    runs = [measure([sys.executable, "-m", "customer_segmentation", "task", task, "--state-root",
                     str(WORK / "state" / size), "--landing-path", str(landing)]) for task in INCREMENT_TASKS]
    output = "".join(run["output"] for run in runs)
    return {"seconds": round(sum(run["seconds"] for run in runs), 2),
            "exit_code": next((run["exit_code"] for run in runs if run["exit_code"]), 0),
            "tasks": tasks_done(output), "lines": rows_added(output, "bronze", "transactions_raw")}


def run_reference(module: str, *args, memory_limit: int | None = None) -> dict:
    result = measure([sys.executable, "-m", f"bench.{module}", *map(str, args)], memory_limit=memory_limit)
    last = result["output"].strip().splitlines()[-1] if result["output"].strip() else ""
    result["detail"] = json.loads(last) if result["exit_code"] == 0 and last.startswith("{") else None
    return result


def commit() -> str:
    """The checkout measured, marked when it has uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gib": round(psutil.virtual_memory().total / 1024 ** 3, 1),
            "python": platform.python_version(), "system": platform.platform()}


def table(rows: list[dict]) -> str:
    header = (f"| size | lines | product s | task seconds ({'/'.join(TASK_LABELS)}) | lifetime-value fit s "
              "(distinct summaries) | product peak GiB | s per M lines | PySpark peer s | pandas s | pandas peak GiB "
              "| product / peer | product / pandas |")
    lines = [header, "|" + "---|" * 12]
    for r in rows:
        p, n, q = r["product"], r["pyspark_peer"], r["pandas_sklearn"]
        tasks = "/".join(f"{p['tasks'].get(t, 0):.0f}" for t in JOB_ORDER)
        fit = f"{p['clv_fit']['seconds']:.2f} ({p['clv_fit']['distinct_summaries']:,})" if p.get("clv_fit") else "-"

        def seconds(result):
            if result is NOT_RUN:
                return "not run"
            return f"{result['seconds']:.0f}" if result["exit_code"] == 0 else f"failed ({result['exit_code']})"

        lines.append(
            f"| {r['size']} | {r['lines']:,} | {seconds(p)} | {tasks} | {fit} | {p['peak_rss_gib']} | "
            f"{p['seconds'] / r['lines'] * 1e6:.1f} | {seconds(n)} | {seconds(q)} | {q['peak_rss_gib']} | "
            f"{r['ratio_peer'] or '-'} | {r['ratio_pandas'] or '-'} |")
    return "\n".join(lines)


def layers_table(rows: list[dict]) -> str:
    """The product's data layers beside the floor's, seconds and ratio per layer and in all."""
    lines = ["| size | " + " | ".join(f"{layer} s (product / floor = ratio)" for layer in (*LAYERS, "data layers"))
             + " |", "|" + "---|" * (len(LAYERS) + 2)]
    for r in rows:
        runs = []  # per run: (product, floor) seconds of each layer and of all of them
        for product, floor in r.get("runs") or [(r["product"], r["floor"])]:
            timings = (floor.get("detail") or {}).get("timings")
            if timings and product["exit_code"] == 0:
                pairs = [(product["tasks"].get(task, 0.0), timings[layer]) for layer, task in LAYERS.items()]
                runs.append([*pairs, (sum(p for p, _ in pairs), sum(f for _, f in pairs))])
        if not runs:
            continue
        cells = []
        for column in zip(*runs):
            p, f = statistics.median(p for p, _ in column), statistics.median(f for _, f in column)
            ratios = sorted(p / f for p, f in column)
            spread = f" ({ratios[0]:.1f}–{ratios[-1]:.1f} in {len(ratios)} runs)" if len(ratios) > 1 else ""
            cells.append(f"{p:.1f} / {f:.1f} = {p / f:.1f}{spread}")
        lines.append(f"| {r['size']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def customers_table(rows: list[dict]) -> str:
    """Train and publish as customers grow: seconds, milliseconds per customer, peak memory."""
    lines = ["| size | customers | train s | train ms per customer | train peak GiB | publish s | "
             "publish ms per customer |", "|" + "---|" * 7]
    for r in rows:
        p = r["product"]
        if p["exit_code"] != 0 or not p.get("customers"):
            continue
        n, train, publish = p["customers"], p["tasks"].get("train", 0.0), p["tasks"].get("publish", 0.0)
        lines.append(f"| {r['size']} | {n:,} | {train:.1f} | {train / n * 1e3:.2f} | "
                     f"{p['peak_rss_gib_by_task'].get('train', '-')} | {publish:.1f} | {publish / n * 1e3:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="real,1m,10m",
                        help="comma-separated: real, 1m, 10m, 50m, 100k-customers, 1m-customers (default: "
                             "real,1m,10m)")
    parser.add_argument("--with-50m", action="store_true", help="add the 50M-line size")
    parser.add_argument("--with-customers", action="store_true",
                        help=f"add the sizes of many customers with few lines each ({', '.join(CUSTOMER_SIZES)})")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data (default: 42)")
    parser.add_argument("--k-max", type=int, default=10, help="largest k for every implementation (default: 10)")
    parser.add_argument("--no-update", action="store_true", help="do not rewrite the table in BENCHMARKS.md")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of the product and the floor, alternately, per size: the layers table gives "
                             "each layer's medians and the range of its ratios (default: 1)")
    parser.add_argument("--product-only", action="store_true",
                        help="skip both references (a scale run of the product alone: time and memory)")
    args = parser.parse_args(argv)
    sizes = ([s.strip() for s in args.sizes.split(",") if s.strip()] + (["50m"] if args.with_50m else [])
             + (list(CUSTOMER_SIZES) if args.with_customers else []))
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: at least one run of each is needed")
    unknown = [s for s in sizes if s not in SIZES and s not in CUSTOMER_SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; allowed: {', '.join([*SIZES, *CUSTOMER_SIZES])}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "make bench" + (f" ARGS=\"{' '.join(argv or sys.argv[1:])}\"" if (argv or sys.argv[1:]) else "")
    record = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"), "command": command,
              "commit": commit(), "machine": machine(), "sizes": []}
    rows = []
    for size in sizes:
        data, lines = dataset(size, args.seed)
        print(f"[bench] {size}: {lines:,} lines", flush=True)
        # The product and the floor alternately, each run right after the other: this machine's
        # speed drifts by more than a change of a few percent within minutes.
        runs = []
        for _ in range(args.repeat):
            landing = landing_folder(data, size)
            runs.append((run_product(landing, size, args.k_max),
                         NOT_RUN if args.product_only else run_reference("floor", data)))
        product, floor = sorted(runs, key=lambda run: run[0]["seconds"])[(len(runs) - 1) // 2]  # the median job
        increment = NOT_RUN
        if runs[-1][0]["exit_code"] == 0:  # on the state of the last run
            increment = {**run_increment(landing, size, args.seed + 1),
                         "orders_before": rows_added(runs[-1][0]["output"], "silver", "orders")}
        peer, pandas = (NOT_RUN, NOT_RUN) if args.product_only else (
            run_reference("pyspark_peer", data, 2, args.k_max, args.seed),
            run_reference("pandas_sklearn", data, 2, args.k_max, args.seed, memory_limit=REFERENCE_MEMORY_LIMIT))

        def ratio(other, product=product):
            ok = product["exit_code"] == 0 and other.get("exit_code") == 0
            return round(product["seconds"] / other["seconds"], 2) if ok else None

        added = [{"size": size, "lines": lines, "product": product, "pyspark_peer": peer, "pandas_sklearn": pandas,
                  "floor": floor, "ratio_peer": ratio(peer), "ratio_pandas": ratio(pandas), "increment": increment,
                  "runs": runs}]
        if size == "real" and not args.product_only:  # the same references, the product like for like
            like = run_product(landing_folder(data, "real-peer-search"), "real-peer-search", args.k_max, PEER_SEARCH)
            added.append({**added[0], "size": PEER_SEARCH_LABEL, "product": like, "ratio_peer": ratio(peer, like),
                          "ratio_pandas": ratio(pandas, like), "increment": NOT_RUN, "runs": [(like, floor)]})
        rows += added
        print("\n\n".join(f(added) for f in (table, layers_table, customers_table, increment_table)), flush=True)
        # Written after every size: a long run that is stopped keeps the sizes it finished.
        record["sizes"] = [without_output(r) for r in rows]
        (RESULTS / f"{record['when']}.json").write_text(json.dumps(record, indent=2) + "\n")
    medians = f" (medians of {args.repeat} runs of each, alternating)" if args.repeat > 1 else ""
    markdown = (table(rows) + f"\n\nThe data layers against the floor{medians}:\n\n" + layers_table(rows)
                + "\n\nTrain and publish as customers grow:\n\n" + customers_table(rows)
                + f"\n\nAn incremental run: bronze and silver again, {INCREMENT_FILES} new landing files after the "
                  f"full run:\n\n" + increment_table(rows))
    print(markdown)
    if not args.no_update:
        update_benchmarks_md(markdown, record)
    return 0 if all(r["product"]["exit_code"] == 0 and r["increment"]["exit_code"] in (0, None)
                    for r in rows) else 1


def without_output(value):
    """A result as the JSON keeps it: every process's output left out."""
    if isinstance(value, dict):
        return {k: without_output(v) for k, v in value.items() if k != "output"}
    return [without_output(v) for v in value] if isinstance(value, (list, tuple)) else value


def increment_table(rows: list[dict]) -> str:
    """The incremental run's seconds per task beside the lines silver held before it."""
    lines = ["| size | orders kept before | new lines | " + " | ".join(f"{t} s" for t in INCREMENT_TASKS) + " |",
             "|" + "---|" * (3 + len(INCREMENT_TASKS))]
    for r in rows:
        inc = r["increment"]
        if inc.get("exit_code") != 0:
            continue
        lines.append(f"| {r['size']} | {inc['orders_before'] or 0:,} | {inc['lines'] or 0:,} | "
                     + " | ".join(f"{inc['tasks'].get(t, 0.0):.1f}" for t in INCREMENT_TASKS) + " |")
    return "\n".join(lines)


def update_benchmarks_md(markdown: str, record: dict) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.is_file() else "<!-- results:start -->\n<!-- results:end -->\n"
    m = record["machine"]
    block = (f"<!-- results:start -->\nMeasured {record['when']} with `{record['command']}` at commit "
             f"{record['commit']} on {m['cpus']} cores "
             f"({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}.\n\n{markdown}\n<!-- results:end -->")
    path.write_text(re.sub(r"<!-- results:start -->.*?<!-- results:end -->", lambda _: block, text, flags=re.S))


if __name__ == "__main__":
    sys.exit(main())
