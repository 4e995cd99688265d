"""Bronze ingestion: incremental, exactly-once, and refusing bad sources before writing anything."""

from pathlib import Path

from customer_segmentation.ingest import task as bronze
from customer_segmentation.ops.jobs import run_task
from testkit import copy_files, run_cli


def _files(synthetic_data: Path) -> list[Path]:
    return sorted((synthetic_data / "transactions").glob("*.csv"))


def _data_lines(files) -> int:
    return sum(len(f.read_text().splitlines()) - 1 for f in files)


def test_ingests_new_files_only(spark, make_settings, synthetic_data):
    settings = make_settings()
    files = _files(synthetic_data)
    landing = Path(settings.landing_path)
    copy_files(files[:40], landing)
    first = bronze.run(spark, settings)[settings.tables.transactions_raw]
    assert first == _data_lines(files[:40])
    assert bronze.run(spark, settings)[settings.tables.transactions_raw] == 0, "a rerun adds nothing"
    copy_files(files[40:], landing)
    second = bronze.run(spark, settings)[settings.tables.transactions_raw]
    assert second == _data_lines(files[40:])
    table = spark.table(settings.tables.transactions_raw)
    assert table.count() == _data_lines(files)
    assert table.select("_line_id").distinct().count() == table.count()
    assert table.select("_source_file").distinct().count() == len(files)


def test_table_is_a_delta_table_in_the_warehouse(spark, make_settings, synthetic_data, session_state):
    settings = make_settings()
    copy_files(_files(synthetic_data)[:3], Path(settings.landing_path))
    run_task(spark, settings, "bronze")
    detail = spark.sql(f"DESCRIBE DETAIL {settings.tables.transactions_raw}").first()
    assert detail["format"] == "delta"
    expected = session_state / "warehouse" / f"{settings.bronze_schema}.db" / "transactions_raw"
    assert detail["location"].removeprefix("file:") == str(expected)
    assert (expected / "_delta_log").is_dir()
    described = spark.sql(f"DESCRIBE {settings.tables.transactions_raw}").collect()
    comments = {r["col_name"]: r["comment"] for r in described}
    assert comments["_raw_line"].startswith("The line as text, as it arrived") and "_raw_bytes" in comments["_raw_line"]


def test_missing_or_empty_source_is_one_clear_line_and_writes_nothing(tmp_path):
    state = tmp_path / "state"
    missing = run_cli("run", "--source", str(tmp_path / "nope"), "--state-root", str(state))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: source: folder {tmp_path / 'nope'} does not exist"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("run", "--source", str(empty), "--state-root", str(state))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: source: folder {empty} contains no files to ingest"
    assert not state.exists(), "nothing may be written"


def test_invalid_identifier_is_one_clear_line_and_writes_nothing(tmp_path, synthetic_data):
    state = tmp_path / "state"
    result = run_cli("run", "--source", str(synthetic_data / "transactions"), "--gold-schema", "gold;drop",
                     "--state-root", str(state))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: setting 'gold_schema': 'gold;drop' is not a valid identifier "
        "(letters, digits and underscores, not starting with a digit, at most 128 characters)"]
    assert not state.exists()
