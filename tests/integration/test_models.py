"""Training and publishing on synthetic data: MLflow runs, the registered champion, segments, history."""

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from customer_segmentation.core.settings import ALGORITHMS
from customer_segmentation.models.task import search_sample
from customer_segmentation.ops.jobs import run_task
from testkit import check_tracking, features_table, parent_and_children


def test_one_parent_run_with_a_nested_run_per_candidate(synthetic_job):
    settings, _ = synthetic_job
    parent, version = check_tracking(settings, len(ALGORITHMS) * (settings.k_max - settings.k_min + 1))
    assert parent.data.tags["champion"] in {f"{a} k={k}" for a in ALGORITHMS for k in range(2, settings.k_max + 1)}
    assert "silhouette_euclidean_sample" in parent.data.metrics and "silhouette_sample_size" in parent.data.metrics


def test_clustering_metrics_table(spark, synthetic_job):
    settings, _ = synthetic_job
    table = spark.table(settings.tables.clustering_metrics).toPandas()
    assert len(table) == 3 * (settings.k_max - settings.k_min + 1) and table["is_champion"].sum() == 1
    trained = table[table["skipped_reason"].isna()]
    assert trained[["silhouette_sq_euclidean", "davies_bouldin", "calinski_harabasz", "wcss"]].notna().all().all()


def test_every_customer_gets_exactly_one_named_segment(spark, synthetic_job):
    settings, _ = synthetic_job
    tables = settings.tables
    segments = spark.table(tables.customer_segments)
    assert segments.count() == spark.table(tables.customer_features).count()
    assert segments.select("customer_id").distinct().count() == segments.count()
    assert segments.where("segment_name IS NULL OR recommended_action IS NULL OR rfm_segment IS NULL").count() == 0
    profiles = spark.table(tables.segment_profiles).toPandas()
    assert profiles["segment_name"].is_unique
    assert profiles["customers"].sum() == segments.count()
    assert profiles["share_of_customers"].sum() == pytest.approx(1.0)
    assert profiles["share_of_net_revenue"].sum() == pytest.approx(1.0)
    assert profiles["description"].str.startswith("Customers who").all()


def test_planted_behaviours_are_recovered(spark, synthetic_job, synthetic_data):
    settings, _ = synthetic_job
    planted = pd.read_csv(synthetic_data / "planted_segments.csv", dtype=str)
    found = spark.table(settings.tables.customer_segments).select("customer_id", "segment_name").toPandas()
    joined = found.merge(planted, on="customer_id")
    assert len(joined) == len(found)
    score = adjusted_rand_score(joined["planted_behaviour"], joined["segment_name"])
    print(f"adjusted Rand index of the champion against the planted behaviours: {score:.3f}")
    assert score >= 0.6


def test_the_registered_champion_scores_through_mlflow_pyfunc_as_published(spark, synthetic_job):
    """Anything that scores with the registered model through MLflow's generic interface (a serving
    endpoint, `spark_udf`, `pyfunc.load_model`) gets the published segment numbers."""
    import mlflow

    from customer_segmentation.models import tracking

    settings, _ = synthetic_job
    tracking.configure(settings)
    model = mlflow.pyfunc.load_model(tracking.champion_uri(settings))
    inputs = [column.name for column in model.metadata.get_input_schema().inputs]
    features = spark.table(settings.tables.customer_features).orderBy("customer_id").limit(300)
    published = (features.join(spark.table(settings.tables.customer_segments).select("customer_id", "segment_id"),
                               "customer_id")
                 .orderBy("customer_id").select(*inputs, "segment_id").toPandas())
    predicted = model.predict(published[inputs])
    assert [int(p) for p in predicted] == published["segment_id"].tolist()


def test_many_customers_are_searched_on_a_seeded_sample_and_the_champion_measured_on_all(spark, make_settings):
    settings = make_settings(k_min=2, k_max=3, algorithms=("kmeans",), kmeans_starts=1, search_sample_size=200)
    # Three behaviours, each spread a little.
    features_table(spark, settings, [(f"c{i}", 10 + 100 * (i % 3) + i % 7, 1 + 5 * (i % 3) + i % 2,
                                      100 * (1 + 10 * (i % 3)) + i % 11) for i in range(600)])
    run_task(spark, settings, "train")
    parent = parent_and_children(settings)[1]
    assert parent.data.params["customers"] == "600"
    assert 150 <= int(parent.data.params["search_customers"]) <= 250
    champion = spark.table(settings.tables.clustering_metrics).where("is_champion").first()
    # The table compares the candidates on the sample; the champion's own metrics cover everyone.
    assert parent.data.metrics["champion_wcss"] > 2 * champion["wcss"] > 0

    customers = spark.range(10_000).selectExpr("CAST(id AS STRING) AS customer_id")
    sample, size = search_sample(customers, 10_000, settings.replace(search_sample_size=1_000))
    ids = {r[0] for r in sample.collect()}
    assert len(ids) == size and 900 <= size <= 1_100
    # The same customers on a rerun, and each of them again when more arrive at the same rate.
    assert {r[0] for r in search_sample(customers, 10_000, settings.replace(search_sample_size=1_000))[0]
            .collect()} == ids
    grown = spark.range(11_000).selectExpr("CAST(id AS STRING) AS customer_id")
    assert len(ids & {r[0] for r in search_sample(grown, 11_000, settings.replace(search_sample_size=1_100))[0]
                      .collect()}) == size
    assert search_sample(customers, 10_000, settings.replace(search_sample_size=0))[0] is customers
