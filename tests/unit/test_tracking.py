"""The local MLflow store: built once, in the background or by training, never half-built."""

import mlflow
import pytest

from customer_segmentation.models import tracking


def test_training_waits_for_the_store_the_background_is_building_instead_of_building_a_second(tmp_path):
    folder = tmp_path / "mlflow"
    tracking.create_local_store_in_background(folder)
    tracking.create_local_store(folder)  # what training does: returns once the store is complete
    assert [path.name for path in folder.iterdir()] == ["mlflow.db"]
    assert mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()


def test_a_store_the_background_could_not_build_is_reported_by_training(tmp_path):
    not_a_folder = tmp_path / "mlflow"
    not_a_folder.write_text("a file where the store's folder should be")
    tracking.create_local_store_in_background(not_a_folder)  # fails quietly
    with pytest.raises(OSError):
        tracking.create_local_store(not_a_folder)


def test_every_fresh_store_is_a_copy_of_one_empty_store_and_stores_are_independent(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "first", tmp_path / "second"
    tracking.create_local_store(first)
    tracking.create_local_store(second)
    assert [p.name for p in (tmp_path / "cache" / "customer_segmentation").iterdir()] == [
        f"mlflow-{mlflow.__version__}-empty.db"]
    clients = [mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}") for folder in (first, second)]
    experiment = clients[0].create_experiment("segmentation", artifact_location=(tmp_path / "artifacts").as_uri())
    clients[0].set_terminated(clients[0].create_run(experiment).info.run_id)
    assert clients[1].get_experiment_by_name("segmentation") is None
    assert len(clients[0].search_runs([experiment])) == 1
