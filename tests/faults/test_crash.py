"""Crash safety: a job process killed with SIGKILL in the middle of each task, then run again,
ends in exactly the state of a run that was never interrupted.

After the first kill the job is rerun from the start; after each later kill it is resumed from
the killed task (`run --from`, as a Databricks repair run does), so every task is killed once and
every killed task is run again over what the kill left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from customer_segmentation.core.settings import Settings
from customer_segmentation.ops.jobs import JOB_ORDER
from testkit import REPO, SMALL_JOB, quality_totals, snapshot

pytestmark = pytest.mark.faults

# The same model search as the reference job; the report is not part of any table.
FLAGS = ["--k-min", str(SMALL_JOB["k_min"]), "--k-max", str(SMALL_JOB["k_max"]),
         "--algorithms", ",".join(SMALL_JOB["algorithms"]),
         "--kmeans-starts", str(SMALL_JOB["kmeans_starts"]), "--no-report"]


def _command(landing: Path, state: Path, start_at: str) -> list[str]:
    return [sys.executable, "-m", "customer_segmentation", "run", "--source", str(landing), "--state-root", str(state),
            "--from", start_at, *FLAGS]


def _kill_during(task: str, command: list[str], delay: float) -> list[str]:
    """Run `command`; SIGKILL the whole process group `delay` seconds after `task` starts."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    seen = []
    for line in process.stdout:
        seen.append(line.rstrip())
        if line.startswith(f"[{task}] started"):
            time.sleep(delay)
            os.killpg(process.pid, signal.SIGKILL)  # the JVM dies with its Python driver
            break
    process.wait(timeout=60)
    seen += process.stdout.read().splitlines()  # whatever it printed before the kill landed
    assert not any(line.startswith(f"[{task}] done") for line in seen), f"{task} ended before the kill"
    return seen


def test_killed_in_every_task_then_rerun_equals_an_uninterrupted_run(spark, small_reference, tmp_path):
    reference = small_reference
    landing = Path(reference.landing_path)
    state = tmp_path / "killed_state"
    interrupted = []
    # Killed in bronze; rerun from the start and killed in silver; then resumed at each killed task.
    resume_at = (JOB_ORDER[0], *JOB_ORDER[:-1])
    for task, start_at, delay in zip(JOB_ORDER, resume_at, (1.0, 2.0, 2.0, 3.0, 4.0, 1.0)):
        output = _kill_during(task, _command(landing, state, start_at), delay)
        interrupted.append((task, output[-1]))
        assert any(line.startswith(f"[{task}] started") for line in output), (task, start_at, output[-5:])
    # The last run has company: a second run on the same state, started while it works, is refused at
    # once and changes nothing; the first ends as if it were alone (the comparison below).
    final = subprocess.Popen(_command(landing, state, JOB_ORDER[-1]), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output = []
    for line in final.stdout:
        output.append(line)
        if line.startswith(f"[{JOB_ORDER[-1]}] started"):
            second = subprocess.run(_command(landing, state, JOB_ORDER[0]), cwd=REPO, capture_output=True,
                                    text=True, timeout=120)
            break
    output += final.stdout.readlines()
    assert final.wait(timeout=600) == 0, "".join(output)[-3000:]
    # It says what it does and no more: no trace of an error it got past, no Spark banner.
    assert not [line for line in output if " ERROR " in line or "default log level" in line], "".join(output)[-3000:]
    assert second.returncode == 2 and second.stdout == "", second.stdout + second.stderr
    [refusal] = second.stderr.strip().splitlines()
    assert refusal.startswith(f"error: the local state {state.resolve()} is in use by another run (pid "), refusal

    killed_tables = snapshot(Settings(state_root=str(state)), [str(state)])
    reference_tables = snapshot(reference, [])
    assert set(killed_tables) == set(reference_tables)
    for table in reference_tables:
        assert killed_tables[table] == reference_tables[table], (table, interrupted)
    warehouse = state / "warehouse"
    log = spark.read.format("delta").load(str(warehouse / "silver.db" / "quality_log"))
    assert quality_totals(log) == quality_totals(spark.table(reference.tables.quality_log))
    history = spark.read.format("delta").load(str(warehouse / "gold.db" / "segment_history"))
    assert history.select("as_of_date").distinct().count() == 1

    # The interrupted training left no run marked as still running.
    mlflow.set_tracking_uri(f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("customer_segmentation")
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_a_metastore_whose_creation_was_killed_is_created_again(tmp_path):
    # What a run killed while Derby created the metastore left behind (seen in this suite): a
    # folder with Derby's lock file and an empty tmp, no service.properties. Every later run failed.
    database = tmp_path / "state" / "metastore" / "metastore_db"
    (database / "tmp").mkdir(parents=True)
    (database / "dbex.lck").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "customer_segmentation", "sql", "--state-root",
                             str(tmp_path / "state"), "SHOW SCHEMAS"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "default" in result.stdout, result.stdout + result.stderr[-2000:]
    assert (database / "service.properties").is_file()
