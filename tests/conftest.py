"""Shared fixtures: one local Spark session per test process, isolated schemas per test.

Tests never touch the developer's `.local/`: the session's warehouse and metastore live in a
temporary folder, and each test builds settings with its own schema names and checkpoints.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "online-retail" / "by-day"

os.environ.setdefault("CUSTOMER_SEGMENTATION_JARS_DIR", str(REPO / ".local" / "jars"))
os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
# Test data is small: two shuffle partitions mean fewer, shorter tasks (also in job subprocesses).
os.environ.setdefault("CUSTOMER_SEGMENTATION_SHUFFLE_PARTITIONS", "2")

_schema_counter = itertools.count()
_findings: list[str] = []


# Folders in the order their files start: those that run whole jobs first, the many short unit
# tests last, so that with two workers (`make test`) neither waits alone on a long file at the end.
FOLDER_ORDER = ("faults", "integration", "notebooks", "bench", "bundle", "unit")


# Session fixtures that run a whole job. With `make test` (pytest-xdist, `--dist loadfile`) the files
# that name one run on the same worker, so the job runs once in the suite instead of once a worker.
SHARED_JOBS = ("small_reference", "synthetic_job", "real_job")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the files that use the same whole-job fixture as one unit of work.
    (xdist's own `loadgroup` marks do not reach its scheduler under pytest 9.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    unit_of_file = {}
    for path in (REPO / "tests").rglob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        jobs = [job for job in SHARED_JOBS if re.search(rf"\b{job}\b", text)]
        if jobs:
            unit_of_file[path.relative_to(REPO).as_posix()] = jobs[0]

    class SharedJobScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return unit_of_file.get(file, file)

    return SharedJobScheduling(config, log)


def pytest_collection_modifyitems(items):
    def rank(item):
        folder = item.path.parent.name
        return FOLDER_ORDER.index(folder) if folder in FOLDER_ORDER else len(FOLDER_ORDER)

    items.sort(key=rank)  # stable: a file's tests keep their order


def pytest_runtest_logreport(report):
    # Figures a test records with record_property("finding", ...) are printed at the end of the run.
    if report.when == "call":
        _findings.extend(f"{report.nodeid}: {value}" for key, value in report.user_properties if key == "finding")


def pytest_terminal_summary(terminalreporter):
    if _findings:
        terminalreporter.section("findings")
        for line in _findings:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def session_state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def spark(session_state):
    from customer_segmentation.core.spark import local_session

    session = local_session(session_state)
    yield session
    session.stop()


@pytest.fixture
def make_settings(tmp_path, session_state):
    """Settings with fresh schemas and checkpoints; keyword arguments override fields."""
    from customer_segmentation.core.settings import Settings

    def build(**overrides):
        prefix = f"t{next(_schema_counter)}"
        values = dict(
            bronze_schema=f"{prefix}_bronze", silver_schema=f"{prefix}_silver", gold_schema=f"{prefix}_gold",
            state_root=str(session_state), checkpoint_root=str(tmp_path / f"{prefix}_checkpoints"),
            landing_path=str(tmp_path / "landing" / "transactions"),
            experiment_name=f"{prefix}_experiment", model_name=f"{prefix}_model", clv_model_name=f"{prefix}_clv",
        )
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture(scope="session")
def real_data() -> Path:
    # The real data is part of CI: a missing folder is a failure, not a skip.
    assert REAL_DATA.is_dir(), f"real data folder {REAL_DATA} is missing"
    return REAL_DATA


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """A small generated dataset shared by tests that only read it."""
    from customer_segmentation.ops.generate import generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, customers=300, seed=11)
    return out


@pytest.fixture(scope="session")
def real_job(spark, real_data, tmp_path_factory, session_state):
    """The whole job on the real data, landed as it would be: the first 100 days, then the rest."""
    from customer_segmentation.ops.jobs import run_job
    from testkit import copy_files, settings_for_job

    landing = tmp_path_factory.mktemp("real_landing") / "transactions"
    settings = settings_for_job(tmp_path_factory, session_state, "real", landing)
    files = sorted(real_data.glob("*.csv"))
    copy_files(files[:100], landing)
    first = run_job(spark, settings, ("bronze", "silver"))
    copy_files(files[100:], landing)
    second = run_job(spark, settings)
    return settings, first, second


@pytest.fixture(scope="session")
def synthetic_job(spark, synthetic_data, tmp_path_factory, session_state):
    """The whole job on the small synthetic dataset."""
    from customer_segmentation.ops.jobs import run_job
    from testkit import settings_for_job

    # k up to 6 keeps the suite short and still brackets the five planted behaviours.
    settings = settings_for_job(tmp_path_factory, session_state, "syn", synthetic_data / "transactions", k_max=6)
    return settings, run_job(spark, settings)
