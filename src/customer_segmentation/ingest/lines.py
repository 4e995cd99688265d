"""Turn raw landing lines into bronze rows: pure DataFrame transforms, no I/O.

Every file is read as text lines (the same on Databricks and locally), so one parser decides
how a line splits into fields, whatever the delimiter. Header lines are recognised by content
and used to find columns by name in that file; data lines keep their exact text in
`_raw_line`, their fields as text under canonical names, anything that did not fit in
`_rescued_data`, and what made the line malformed in `_malformed` (silver quarantines those).
User-given values (delimiter, column names) only ever reach Spark as literals, never as SQL.
"""

from __future__ import annotations

import re
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from .source_profiles import SourceProfile, SourceSpec

LINEAGE_COLUMNS = ("_raw_line", "_rescued_data", "_malformed", "_source_file", "_source_profile",
                   "_ingested_at", "_line_id")
_QUOTE = '"'


def _delimiter_regex(profile: SourceProfile) -> str:
    return "[ \\t]+" if profile.delimiter == "whitespace" else re.escape(profile.delimiter)


def split_fields(line: Column, profile: SourceProfile) -> Column:
    """Split a line into unquoted fields; delimiters inside double quotes do not split."""
    delimiter = _delimiter_regex(profile)
    text = F.regexp_replace(line, "^[ \\t]+|[ \\t]+$", "") if profile.delimiter == "whitespace" else line
    # Lookahead: a delimiter splits only if an even number of quotes follows it.
    quote_aware = F.split(text, F.lit(f'{delimiter}(?=(?:[^"]*"[^"]*")*[^"]*$)'), -1)
    plain = F.split(text, F.lit(delimiter), -1)
    fields = F.when(F.instr(text, _QUOTE) == 0, plain).otherwise(quote_aware)

    def unquote(field: Column) -> Column:
        quoted = field.startswith(_QUOTE) & field.endswith(_QUOTE) & (F.length(field) >= 2)
        return F.when(quoted, F.regexp_replace(F.regexp_extract(field, '^"(.*)"$', 1), '""', '"')).otherwise(field)

    return F.transform(fields, unquote)


def _normalised(fields: Column) -> Column:
    return F.transform(fields, lambda f: F.lower(F.trim(f)))


def parse_lines(lines: DataFrame, profile: SourceProfile, spec: SourceSpec) -> DataFrame:
    """Bronze rows from text lines.

    `lines` has `value` (the line), `_source_file` and `_ingested_at`. Whole files must be in
    the same DataFrame (a streaming micro-batch always holds whole files), because a file's
    header decides how its other lines map.
    """
    mapped_sources = [source.lower() for _, source in profile.mapping]
    declared_layout = F.array(*[F.lit(s.lower()) for s in profile.source_columns])
    value = F.regexp_replace(F.col("value"), "^\ufeff", "")  # a byte-order mark is not data

    data = (
        lines.withColumn("_raw_line", F.col("value"))
        .withColumn("_fields", split_fields(value, profile))
        .where(F.trim(value) != "")
    )
    if profile.header:
        def names_every_mapped_column(fields: Column) -> Column:
            normalised = _normalised(fields)
            return reduce(lambda a, b: a & b, [F.array_contains(normalised, F.lit(s)) for s in mapped_sources])

        # A cheap text test first: only lines that hold every mapped column name are compared field by field.
        lowered = F.lower(value)
        may_be_header = reduce(lambda a, b: a & b, [F.instr(lowered, F.lit(s)) > 0 for s in mapped_sources
                                                    if _QUOTE not in s], F.lit(True))
        headers = (lines.where(may_be_header)
                   .select("_source_file", split_fields(value, profile).alias("_fields"))
                   .where(names_every_mapped_column(F.col("_fields")))
                   .groupBy("_source_file").agg(F.min(_normalised(F.col("_fields"))).alias("_header")))
        is_header = F.when(may_be_header, names_every_mapped_column(F.col("_fields"))).otherwise(False)
        data = data.where(~is_header).join(F.broadcast(headers), "_source_file", "left")
    else:
        data = data.withColumn("_header", F.lit(None).cast("array<string>"))
    layout = F.coalesce(F.col("_header"), declared_layout)
    data = data.withColumn("_layout", layout)

    columns = []
    for canonical in spec.columns:
        source = profile.source_for(canonical)
        if source is None:
            columns.append(F.lit(None).cast("string").alias(canonical))
            continue
        position = F.array_position("_layout", F.lit(source.lower())).cast("int")
        columns.append(F.when(position > 0, F.try_element_at("_fields", position)).alias(canonical))

    quote_count = F.length("_raw_line") - F.length(F.regexp_replace("_raw_line", _QUOTE, ""))
    field_count, expected = F.size("_fields"), F.size("_layout")
    malformed = (
        # Spark keeps a line's bytes as they were: invalid UTF-8 is still detectable here.
        F.when(~F.expr("is_valid_utf8(_raw_line)") | (F.instr("_raw_line", "\ufffd") > 0),
               F.lit("not valid UTF-8 text"))
        .when(quote_count % 2 == 1, F.lit("unbalanced quotes"))
        .when(field_count != expected,
              F.format_string("%d fields where the layout has %d", field_count, expected))
    )
    # Fields the profile does not use, by file column name, and surplus fields (no column).
    unused = F.filter(
        F.zip_with("_layout", "_fields", lambda column, field: F.struct(column.alias("column"), field.alias("value"))),
        lambda entry: entry["value"].isNotNull()
        & (entry["column"].isNull() | ~F.array_contains(F.array(*[F.lit(s) for s in mapped_sources]),
                                                          entry["column"])),
    )
    rescued = F.when(F.size(unused) > 0, F.to_json(unused))
    occurrence = F.row_number().over(Window.partitionBy("_source_file", "_raw_line").orderBy("_raw_line"))
    line_id = F.sha2(F.concat_ws("\u001f", "_source_file", "_raw_line", occurrence.cast("string")), 256)
    return data.select(
        *columns,
        "_raw_line",
        rescued.alias("_rescued_data"),
        malformed.alias("_malformed"),
        "_source_file",
        F.lit(profile.name).alias("_source_profile"),
        "_ingested_at",
        line_id.alias("_line_id"),
    )
