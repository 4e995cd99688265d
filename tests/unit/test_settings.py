import datetime as dt

import pytest

from customer_segmentation.core.errors import ConfigError
from customer_segmentation.core.settings import ALGORITHMS, PARAMS, Settings


def test_defaults_are_valid_and_name_every_table_with_three_levels():
    settings = Settings.from_params({})
    assert settings.tables.transactions_raw == "spark_catalog.bronze.transactions_raw"
    assert settings.tables.orders == "spark_catalog.silver.orders"
    assert settings.tables.customer_features == "spark_catalog.gold.customer_features"
    assert all(name.count(".") == 2 for name in settings.tables.all())
    assert settings.algorithms == ALGORITHMS


@pytest.mark.parametrize("setting", ["catalog", "bronze_schema", "silver_schema", "gold_schema"])
@pytest.mark.parametrize("bad", ["gold; DROP TABLE x", "1gold", "gold-layer", "", "a.b", "x" * 200, "gold`"])
def test_invalid_identifier_is_an_error_naming_the_setting(setting, bad):
    with pytest.raises(ConfigError) as error:
        Settings.from_params({setting: bad})
    assert error.value.setting == setting
    assert f"setting '{setting}'" in str(error.value)


def test_identifiers_are_checked_when_built_directly_too():
    with pytest.raises(ConfigError, match="gold_schema"):
        Settings(gold_schema="gold;--")


@pytest.mark.parametrize("values, setting, message", [
    ({"k_min": "1"}, "k_min", "below 2"),
    ({"k_min": "5", "k_max": "4"}, "k_max", "empty"),
    ({"k_max": "ten"}, "k_max", "not a whole number"),
    ({"algorithms": "kmeans,dbscan"}, "algorithms", "unknown value 'dbscan'"),
    ({"algorithms": ""}, "algorithms", "is empty"),
    ({"features": "recency_days,shoe_size"}, "features", "unknown value 'shoe_size'"),
    ({"as_of_date": "2011-13-01"}, "as_of_date", "YYYY-MM-DD"),
    ({"min_segment_share": "1.5"}, "min_segment_share", "outside the allowed range"),
    ({"model_name": "a.b"}, "model_name", "three-level"),
    ({"model_name": "main.gold.bad-name"}, "model_name", "not a valid identifier"),
    ({"seed": "x"}, "seed", "not a whole number"),
    ({"kmeans_starts": "0"}, "kmeans_starts", "outside 1-50"),
    ({"search_sample_size": "50"}, "search_sample_size", "below 100 customers (0 searches on every customer)"),
    ({"no_such_setting": "1"}, "no_such_setting", "not a known setting"),
    ({"max_abs_quantity": "3000000000"}, "max_abs_quantity", "above 2,147,483,647"),
    ({"max_unit_price": "1e8"}, "max_unit_price", "beyond the line amounts silver.orders holds"),
])
def test_bad_values_name_the_setting_and_what_is_allowed(values, setting, message):
    with pytest.raises(ConfigError) as error:
        Settings.from_params(values)
    assert error.value.setting == setting
    assert message in str(error.value)


def test_text_values_are_parsed():
    settings = Settings.from_params({"as_of_date": "2011-12-10", "k_min": "3", "k_max": "6",
                                     "algorithms": "kmeans, gaussian_mixture", "model_name": "main.gold.segments"})
    assert settings.as_of_date == dt.date(2011, 12, 10)
    assert (settings.k_min, settings.k_max) == (3, 6)
    assert settings.algorithms == ("kmeans", "gaussian_mixture")


def test_params_round_trip():
    settings = Settings.from_params({"as_of_date": "2011-12-10", "features": "recency_days,frequency"})
    assert Settings.from_params(settings.to_params()) == settings
    assert set(settings.to_params()) == {p.name for p in PARAMS}


def test_checkpoints_default_under_state_root():
    settings = Settings(state_root="/x")
    assert settings.checkpoint(settings.tables.orders) == "/x/checkpoints/spark_catalog.silver.orders"
    assert Settings(checkpoint_root="/Volumes/c/s/v/").checkpoint("t") == "/Volumes/c/s/v/t"
