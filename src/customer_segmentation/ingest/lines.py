"""Turn raw landing lines into bronze rows: pure DataFrame transforms, no I/O.

Every file is read as lines of bytes (the same on Databricks and locally), so one parser decides
how a line splits into fields, whatever the delimiter. Header lines are recognised by content
and used to find columns by name in that file; data lines keep their exact bytes in
`_raw_bytes`, their text in `_raw_line`, their fields as text under canonical names, anything
that did not fit in `_rescued_data`, and what made the line malformed in `_malformed` (silver
quarantines those). User-given values (delimiter, column names) only ever reach Spark as
literals, never as SQL.

Bytes that are not valid text never reach a string column: Parquet and Delta define strings as
UTF-8, and readers other than Spark (delta-rs, pandas, Polars, Delta Sharing) refuse a table
holding anything else. A line is decoded with the profile's `encoding`; what cannot be decoded
becomes U+FFFD in the text, NUL bytes too, and the line is quarantined with the byte offset.
"""

from __future__ import annotations

import re
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from .source_profiles import SourceProfile, SourceSpec

_QUOTE = '"'
REPLACEMENT = "\ufffd"
# One valid UTF-8 sequence, written over a Latin-1 reading of the bytes (one character a byte).
_UTF8_SEQUENCE = ("(?:[\\x00-\\x7F]|[\\xC2-\\xDF][\\x80-\\xBF]|\\xE0[\\xA0-\\xBF][\\x80-\\xBF]"
                  "|[\\xE1-\\xEC\\xEE\\xEF][\\x80-\\xBF]{2}|\\xED[\\x80-\\x9F][\\x80-\\xBF]"
                  "|\\xF0[\\x90-\\xBF][\\x80-\\xBF]{2}|[\\xF1-\\xF3][\\x80-\\xBF]{3}|\\xF4[\\x80-\\x8F][\\x80-\\xBF]{2})")
# Windows-1252 differs from Latin-1 in 0x80-0x9F alone: read as Latin-1, then map those 32 characters.
_C1_CONTROLS = "".join(chr(code) for code in range(0x80, 0xA0))
_WINDOWS_1252 = bytes(range(0x80, 0xA0)).decode("cp1252", errors="replace")
# A UTF-16 newline is two bytes: files in it are split there (the reader's lineSep), not at \n, \r\n or \r.
LINE_SEPARATORS = {"utf-16le": "\n\u0000", "utf-16be": "\u0000\n"}


def reader_options(profile: SourceProfile) -> dict[str, str]:
    """Options of the text reader for files of `profile`."""
    options = {"pathGlobFilter": profile.file_glob} if profile.file_glob else {}
    if profile.encoding in LINE_SEPARATORS:
        options["lineSep"] = LINE_SEPARATORS[profile.encoding]
    return options


def decode(raw: Column, encoding: str) -> Column:
    """The text of a line's bytes in `encoding`: always valid, undecodable bytes as U+FFFD."""
    if encoding == "utf-8":
        return F.make_valid_utf8(raw.cast("string"))
    if encoding in ("latin-1", "windows-1252"):
        text = F.decode(raw, "ISO-8859-1")
        return text if encoding == "latin-1" else F.translate(text, _C1_CONTROLS, _WINDOWS_1252)
    # A line split at the UTF-16 newline keeps the carriage return of a Windows line end.
    return F.regexp_replace(F.decode(raw, encoding.upper()), "\r$", "")


def encoding_problem(raw: Column, text: Column, encoding: str) -> Column:
    """Why a line's bytes are not clean text in `encoding` (null when they are), with the offset."""
    checks = []
    if encoding == "utf-8":
        valid_prefix = F.length(F.regexp_extract(F.decode(raw, "ISO-8859-1"), f"^{_UTF8_SEQUENCE}*", 0))
        checks.append((~F.is_valid_utf8(raw.cast("string")), F.format_string(
            "byte %d (0x%s) is not valid UTF-8 (a file in another encoding? name it in the source profile: "
            "encoding)", valid_prefix, F.hex(F.substring(raw, valid_prefix + 1, 1)))))
    nul, replacement = F.instr(text, "\u0000"), F.instr(text, REPLACEMENT)
    checks.append((nul > 0, F.format_string(
        "NUL byte at character %d: binary data, or a UTF-16 file (name its encoding in the source profile)",
        nul - 1)))
    checks.append((replacement > 0, F.format_string(
        "replacement character U+FFFD at character %d: the text was damaged before it arrived"
        + ("" if encoding == "utf-8" else f", or its bytes are not valid {encoding}"), replacement - 1)))
    problem = None
    for failed, why in checks:
        problem = F.when(failed, why) if problem is None else problem.when(failed, why)
    return problem


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
    """Bronze rows from lines.

    `lines` has `value` (the line, its bytes as read), `_source_file` and `_ingested_at`. Whole
    files must be in the same DataFrame (a streaming micro-batch always holds whole files),
    because a file's header decides how its other lines map and its fingerprint covers all its lines.
    """
    mapped_sources = [source.lower() for _, source in profile.mapping]
    declared_layout = F.array(*[F.lit(s.lower()) for s in profile.source_columns])
    raw = F.col("value").cast("binary")
    decoded = lines.select("_source_file", "_ingested_at", raw.alias("_raw_bytes"),
                           decode(raw, profile.encoding).alias("_decoded"))
    value = F.regexp_replace(F.col("_decoded"), "^\ufeff", "")  # a byte-order mark is not data

    data = (
        decoded.withColumn("_fields", split_fields(value, profile))
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
        headers = (decoded.where(may_be_header)
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
        field = F.when(position > 0, F.try_element_at("_fields", position))
        columns.append(F.translate(field, "\u0000", REPLACEMENT).alias(canonical))

    quote_count = F.length("_decoded") - F.length(F.regexp_replace("_decoded", _QUOTE, ""))
    field_count, expected = F.size("_fields"), F.size("_layout")
    malformed = (
        F.coalesce(encoding_problem(F.col("_raw_bytes"), F.col("_decoded"), profile.encoding),
                   F.when(quote_count % 2 == 1, F.lit("unbalanced quotes"))
                   .when(field_count != expected,
                         F.format_string("%d fields where the layout has %d", field_count, expected)))
    )
    # Fields the profile does not use, by file column name, and surplus fields (no column).
    unused = F.filter(
        F.zip_with("_layout", "_fields", lambda column, field: F.struct(column.alias("column"), field.alias("value"))),
        lambda entry: entry["value"].isNotNull()
        & (entry["column"].isNull() | ~F.array_contains(F.array(*[F.lit(s) for s in mapped_sources]),
                                                          entry["column"])),
    )
    rescued = F.when(F.size(unused) > 0, F.translate(F.to_json(unused), "\u0000", REPLACEMENT))
    # Identical lines of a file are told apart by their occurrence; the id hashes the exact bytes.
    occurrence = F.row_number().over(Window.partitionBy("_source_file", "_raw_bytes").orderBy("_raw_bytes"))
    separator = F.lit(bytearray(b"\x1f"))
    line_id = F.sha2(F.concat(F.encode("_source_file", "UTF-8"), separator, "_raw_bytes", separator,
                              F.encode(occurrence.cast("string"), "UTF-8")), 256)
    parsed = data.select(*columns, F.translate("_decoded", "\u0000", REPLACEMENT).alias("_raw_line"), "_raw_bytes",
                         rescued.alias("_rescued_data"), malformed.alias("_malformed"), "_source_file",
                         F.lit(profile.name).alias("_source_profile"), "_ingested_at", line_id.alias("_line_id"))
    return parsed.withColumn("_file_fingerprint", file_fingerprint())


def file_fingerprint() -> Column:
    """The same for two files with the same lines, whatever their names or the order of their lines:
    the count and two order-free sums of 64-bit hashes of the lines' bytes (exact decimals, no overflow)."""
    per_file = Window.partitionBy("_source_file")
    first, second = F.xxhash64("_raw_bytes"), F.xxhash64(F.lit("fingerprint"), "_raw_bytes")
    parts = [F.count(F.lit(1)).over(per_file),
             *[F.sum(h.cast("decimal(38,0)")).over(per_file) for h in (first, second)]]
    return F.sha2(F.concat_ws(":", *[p.cast("string") for p in parts]), 256)
