"""Shared data for the fault suite: a small generated landing zone."""

import pytest


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory):
    from customer_segmentation.generate import generate

    out = tmp_path_factory.mktemp("small")
    generate(out, customers=60, seed=21)
    return sorted((out / "transactions").glob("*.csv"))
