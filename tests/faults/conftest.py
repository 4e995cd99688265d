"""Shared data for the fault suite: a small generated landing zone and one uninterrupted,
unbatched job over it that the batch and crash tests compare against."""

import pytest

from testkit import SMALL_JOB


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory):
    from customer_segmentation.ops.generate import generate

    out = tmp_path_factory.mktemp("small")
    generate(out, customers=60, seed=21)
    return sorted((out / "transactions").glob("*.csv"))


@pytest.fixture(scope="session")
def small_settings(tmp_path_factory, session_state):
    """Settings for a job named `prefix` over its own (empty) landing folder."""
    from customer_segmentation.core.settings import Settings

    def build(prefix):
        root = tmp_path_factory.mktemp(prefix)
        (root / "landing").mkdir()
        return Settings(bronze_schema=f"{prefix}_bronze", silver_schema=f"{prefix}_silver",
                        gold_schema=f"{prefix}_gold", landing_path=str(root / "landing"),
                        checkpoint_root=str(root / "checkpoints"), state_root=str(session_state),
                        experiment_name=f"{prefix}_experiment", model_name=f"{prefix}_model", **SMALL_JOB)

    return build


@pytest.fixture(scope="session")
def small_reference(spark, small_landing, small_settings):
    """The whole job, run once over every small file; its landing folder must stay as it is."""
    from pathlib import Path

    from customer_segmentation.ops.jobs import run_job
    from testkit import copy_files

    settings = small_settings("reference")
    copy_files(small_landing, Path(settings.landing_path))
    run_job(spark, settings)
    return settings
