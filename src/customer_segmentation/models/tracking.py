"""MLflow wiring: the workspace and Unity Catalog on Databricks, a sqlite store under .local/ elsewhere."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import warnings
from pathlib import Path

from ..core.settings import Settings, on_databricks

CHAMPION_ALIAS = "champion"
# Which task opened a top-level run: "train" (the model search), "lifetime_value" or "publish"
# (the report figures).
TASK_TAG = "customer_segmentation.task"
_STORE_LOCK = threading.Lock()


def tracking_uri(settings: Settings) -> str:
    return "databricks" if on_databricks() else f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}"


def ui_command(settings: Settings) -> str:
    return f".venv/bin/mlflow ui --backend-store-uri {tracking_uri(settings)} --port 5000"


def configure(settings: Settings):
    """Point MLflow at the right stores and return the experiment id (created if missing)."""
    import mlflow

    _quiet()
    mlflow.set_tracking_uri(tracking_uri(settings))
    if on_databricks():
        mlflow.set_registry_uri("databricks-uc")
    else:
        create_local_store(settings.mlflow_dir)
        mlflow.set_registry_uri(tracking_uri(settings))
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is None:
        artifact_location = None if on_databricks() else (settings.mlflow_dir / "artifacts").as_uri()
        experiment_id = mlflow.create_experiment(settings.experiment_name, artifact_location=artifact_location)
    else:
        experiment_id = experiment.experiment_id
    # Active experiment, so nested runs land next to their parent.
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def end_orphaned_runs(experiment_id: str, task: str) -> int:
    """Mark runs an interrupted `task` left RUNNING as KILLED: its top-level runs and their nested
    runs. Only that task's: tasks that run side by side on Databricks (train and lifetime_value)
    share the experiment, and the job never runs twice at once."""
    import mlflow

    client = mlflow.MlflowClient()
    running = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000)
    parents = {r.info.run_id for r in running if r.data.tags.get(TASK_TAG) == task}
    orphans = [r for r in running if r.info.run_id in parents or r.data.tags.get("mlflow.parentRunId") in parents]
    for run in orphans:
        client.set_tag(run.info.run_id, "ended_by", f"a later {task} task: the run was interrupted")
        client.set_terminated(run.info.run_id, status="KILLED")
    return len(orphans)


@contextlib.contextmanager
def task_run(settings: Settings, task: str, run_name: str):
    """The top-level MLflow run of one task, after ending what an interrupted one left running."""
    import mlflow

    experiment_id = configure(settings)
    end_orphaned_runs(experiment_id, task)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags={TASK_TAG: task}) as run:
        yield run


def _quiet() -> None:
    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    for noisy in ("mlflow", "alembic", "py4j"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # Models are logged with a signature and, on purpose, no input example (no customer rows in
    # artifacts): MLflow's reminder of it would be noise in every run's output.
    warnings.filterwarnings("ignore", message=".*An input example was not provided", category=UserWarning)


def create_local_store(folder: Path) -> None:
    """Copy an empty store beside its final name, then rename it: a process killed meanwhile leaves
    only a temporary file, never a half-built store."""
    _quiet()
    with _STORE_LOCK:
        store = folder / "mlflow.db"
        if store.exists():
            return
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("mlflow.db.building-*"):
            leftover.unlink()
        building = folder / f"mlflow.db.building-{os.getpid()}"
        shutil.copyfile(_empty_store(), building)
        os.replace(building, store)


def _empty_store() -> Path:
    """An empty store of the installed MLflow, built once per user and version (building its schema
    takes 1.3-1.7 s of Python, a copy milliseconds): every fresh local state starts from a copy."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "customer_segmentation"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        building = cache / f"{template.name}.building-{os.getpid()}"  # one per process: under _STORE_LOCK
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{building}").search_experiments(max_results=1)
        os.replace(building, template)  # atomic: processes building it at once each rename a whole store
    return template


def create_local_store_in_background(folder: Path) -> None:
    """Start creating the local store while Spark starts (the first one on a machine builds the empty
    store, about 1.5 s of Python); training waits for it if it is not done, and creates it itself,
    reporting any error, if this attempt failed."""
    def attempt() -> None:
        with contextlib.suppress(Exception):
            create_local_store(folder)

    threading.Thread(target=attempt, name="mlflow-store", daemon=True).start()


def champion_uri(settings: Settings) -> str:
    return f"models:/{settings.model_name}@{CHAMPION_ALIAS}"


def download_run_artifacts(run_id: str, path: str, destination: Path) -> Path:
    import mlflow

    destination.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(destination)))
