"""Bronze on the real UCI transactions, landed in two batches."""

import pytest

from customer_segmentation import bronze
from testkit import copy_files

pytestmark = pytest.mark.real_data


def test_two_batches_give_every_line_exactly_once(spark, make_settings, real_data, tmp_path):
    settings = make_settings()
    files = sorted(real_data.glob("*.csv"))
    assert len(files) == 305
    copy_files(files[:100], tmp_path / "landing" / "transactions")
    bronze.run(spark, settings)
    copy_files(files[100:], tmp_path / "landing" / "transactions")
    added = bronze.run(spark, settings)[settings.tables.transactions_raw]
    table = spark.table(settings.tables.transactions_raw)
    assert table.count() == 541_909
    assert added < 541_909
    assert table.select("_source_file").distinct().count() == 305
    assert table.select("_line_id").distinct().count() == 541_909
    assert table.where("_malformed IS NOT NULL").count() == 0
