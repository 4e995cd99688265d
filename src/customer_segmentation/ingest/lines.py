"""Turn raw landing lines into bronze rows: pure DataFrame transforms, no I/O.

Every file is read as lines of bytes (the same on Databricks and locally), so one parser decides
how a line splits into fields, whatever the delimiter. Header lines are recognised by content
and used to find columns by name in that file; data lines keep their text in `_raw_line`, their
exact bytes in `_raw_bytes` where that text in UTF-8 is not those bytes (so every line is
`coalesce(_raw_bytes, encode(_raw_line, 'UTF-8'))`, byte for byte), their fields as text under
canonical names, anything that did not fit in `_rescued_data`, and what made the line malformed
in `_malformed` (silver quarantines those). User-given values (delimiter, column names) only ever
reach Spark as literals, never as SQL.

Bytes that are not valid text never reach a string column: Parquet and Delta define strings as
UTF-8, and readers other than Spark (delta-rs, pandas, Polars, Delta Sharing) refuse a table
holding anything else. A line is decoded with the profile's `encoding`; what cannot be decoded
becomes U+FFFD in the text, NUL bytes too, and the line is quarantined with the byte offset.
"""

from __future__ import annotations

import re
from functools import reduce

from pyspark.sql import Column, DataFrame
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


def text_is_bytes(raw: Column, text: Column, encoding: str) -> Column:
    """Whether a line's text (`decode`d from its bytes `raw`) in UTF-8 is exactly those bytes."""
    return F.is_valid_utf8(raw.cast("string")) if encoding == "utf-8" else F.encode(text, "UTF-8") == raw


def encoding_problem(raw: Column, text: Column, encoding: str, is_bytes: Column) -> Column:
    """Why a line's bytes are not clean text in `encoding` (null when they are), with the offset.
    `is_bytes`: `text_is_bytes` of the line."""
    checks = []
    if encoding == "utf-8":
        valid_prefix = F.length(F.regexp_extract(F.decode(raw, "ISO-8859-1"), f"^{_UTF8_SEQUENCE}*", 0))
        checks.append((~is_bytes, F.format_string(
            "byte %d (0x%s) is not valid UTF-8 (a file in another encoding? name it in the source profile: "
            "encoding)", valid_prefix, F.hex(F.substring(raw, valid_prefix + 1, 1)))))
    # `contains` to test, `instr` (which counts characters: several times slower) only for the detail.
    checks.append((text.contains("\u0000"), F.format_string(
        "NUL byte at character %d: binary data, or a UTF-16 file (name its encoding in the source profile)",
        F.instr(text, "\u0000") - 1)))
    checks.append((text.contains(REPLACEMENT), F.format_string(
        "replacement character U+FFFD at character %d: the text was damaged before it arrived"
        + ("" if encoding == "utf-8" else f", or its bytes are not valid {encoding}"), F.instr(text, REPLACEMENT) - 1)))
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

    def unquote(field: Column) -> Column:
        quoted = field.startswith(_QUOTE) & field.endswith(_QUOTE) & (F.length(field) >= 2)
        return F.when(quoted, F.regexp_replace(F.regexp_extract(field, '^"(.*)"$', 1), '""', '"')).otherwise(field)

    # Most lines hold no quote: a plain split, without the per-field lambda (Spark interprets lambdas).
    return F.when(~text.contains(_QUOTE), F.split(text, F.lit(delimiter), -1)).otherwise(
        F.transform(quote_aware, unquote))


def _normalised(fields: Column) -> Column:
    return F.transform(fields, lambda f: F.lower(F.trim(f)))


def _read(lines: DataFrame, profile: SourceProfile) -> DataFrame:
    """The lines read: their bytes, their decoded text (`_decoded`; `_text` without a byte-order
    mark; `_text_is_bytes`) and their place in the read (`_read_order`, increasing through a file);
    blank lines dropped. Both passes of `parse_lines` read their lines through this."""
    raw = F.col("value").cast("binary")
    text_of_bytes = decode(raw, profile.encoding)
    # Numbered as read, before anything is filtered: the same numbers in both passes of a batch.
    # Decoding and its check in one projection: UTF-8's validity is then found once a line.
    read = lines.select("_source_file", "_ingested_at", raw.alias("_raw_bytes"), text_of_bytes.alias("_decoded"),
                        text_is_bytes(raw, text_of_bytes, profile.encoding).alias("_text_is_bytes"),
                        F.monotonically_increasing_id().alias("_read_order"))
    # A byte-order mark is not data (a test and a substring: cheaper per line than a regex).
    decoded = F.col("_decoded")
    text = F.when(decoded.startswith("\ufeff"), F.substring(decoded, 2, 1 << 30)).otherwise(decoded)
    return read.withColumn("_text", text).where(F.trim("_text") != "")


def _with_header_test(read: DataFrame, profile: SourceProfile) -> DataFrame:
    """`read` (see `_read`) with `_is_header`: whether a line is a header of the profile's columns."""
    if not profile.header:
        return read.withColumn("_is_header", F.lit(False))
    mapped_sources = [source.lower() for _, source in profile.mapping]
    normalised = _normalised(split_fields(F.col("_text"), profile))
    names_every_mapped_column = reduce(lambda a, b: a & b,
                                       [F.array_contains(normalised, F.lit(s)) for s in mapped_sources])
    # Cheap text tests first: only lines that hold every mapped column name are split and compared,
    # and only lines that hold the rarest letter of those names are lowered to find out (null else).
    lowered = F.col("_lowered")
    may_be_header = reduce(lambda a, b: a & b, [lowered.contains(s) for s in mapped_sources
                                                if _QUOTE not in s], lowered.isNotNull())
    return (read.withColumn("_lowered", F.when(_holds_rarest_letter(F.col("_text"), mapped_sources),
                                               F.lower("_text")))
            .withColumn("_is_header", F.when(may_be_header, names_every_mapped_column).otherwise(False))
            .drop("_lowered"))


# Letters, rarest first in English text; "i" and "k" are not used: a non-ASCII letter lowers to
# each (U+0130, the Kelvin sign), so a line could hold one of them in neither case.
_RAREST_FIRST = "zqxjvbpygfwmucldrhsnoate"


def _holds_rarest_letter(text: Column, names: list[str]) -> Column:
    """Whether `text` holds, in either case, the rarest letter of the (lower-case) `names`: what a
    line that holds every name in any case must, and a test far cheaper than lowering the line."""
    letter = next((c for c in _RAREST_FIRST if any(c in name for name in names)), None)
    return F.lit(True) if letter is None else text.contains(letter) | text.contains(letter.upper())


def file_facts(read: DataFrame, profile: SourceProfile) -> DataFrame:
    """One row per landing file of `read` (see `_with_header_test`): its layout (its header's
    columns, else the profile's), the fingerprint of its data lines, where its lines start in the
    read, where its header lines are in it (`_header_reads`), and where each canonical column is in
    its layout. One aggregation: only a row per file crosses the shuffle."""
    data_line = ~F.col("_is_header")
    # The fingerprint: the same for two files with the same data lines, whatever their names or the
    # order of their lines (the count and two order-free sums of 64-bit hashes of the lines' bytes).
    # Each sum is exact: the hashes' high and low 32 bits are summed apart as longs (no overflow below
    # 2^31 lines a file) and joined as a decimal once.
    hashes = F.xxhash64("_raw_bytes"), F.xxhash64(F.lit("fingerprint"), "_raw_bytes")
    halves = [part for hash_ in hashes for part in (F.shiftright(hash_, 32), hash_.bitwiseAND(0xFFFFFFFF))]
    header = (F.when(F.col("_is_header"), _normalised(split_fields(F.col("_text"), profile)))
              if profile.header else F.lit(None).cast("array<string>"))
    per_file = read.groupBy("_source_file").agg(
        F.min("_read_order").alias("_first_read"), F.min(header).alias("_header"),
        F.collect_list(F.when(F.col("_is_header"), F.col("_read_order"))).alias("_header_reads"),
        F.count(F.when(data_line, 1)).alias("_data_lines"),
        *[F.sum(F.when(data_line, half)).alias(f"_half{i}") for i, half in enumerate(halves)])

    def exact_sum(high: str, low: str) -> Column:
        scale = F.lit(1 << 32).cast("decimal(38,0)")
        return F.col(high).cast("decimal(38,0)") * scale + F.col(low).cast("decimal(38,0)")

    fingerprint_parts = [F.col("_data_lines"), exact_sum("_half0", "_half1"), exact_sum("_half2", "_half3")]
    fingerprint = F.sha2(F.concat_ws(":", *[p.cast("string") for p in fingerprint_parts]), 256)
    layout = F.coalesce("_header", F.array(*[F.lit(s.lower()) for s in profile.source_columns]))
    mapped = F.array(*[F.lit(source.lower()) for _, source in profile.mapping])
    positions = [F.array_position("_layout", F.lit(source.lower())).cast("int").alias(f"_at_{canonical}")
                 for canonical, source in profile.mapping]
    return (per_file.select("_source_file", "_first_read", "_header_reads", fingerprint.alias("_file_fingerprint"),
                            layout.alias("_layout"))
            .select("*", F.size(F.array_except("_layout", mapped)).alias("_unmapped_columns"), *positions))


def parse_lines(lines: DataFrame, profile: SourceProfile, spec: SourceSpec) -> DataFrame:
    """Bronze rows from lines.

    `lines` has `value` (the line, its bytes as read), `_source_file` and `_ingested_at`. Whole
    files must be in the same DataFrame (a streaming micro-batch always holds whole files),
    because a file's header decides how its other lines map and its fingerprint covers all its lines.

    Two passes over the lines, neither moving them: the first aggregates what needs a whole file (its
    layout, its fingerprint, where its lines start and where its headers are: `file_facts`), a row per
    file; the second splits every line and joins its file's row, broadcast. The second pass knows the
    header lines by their place in the read, so only the first tests lines for a header (the test is
    most of the cost of reading a line: BENCHMARKS.md). A line is identified by its file and its
    place in the read, so identical lines of a file are told apart without comparing them.
    """
    facts = file_facts(_with_header_test(_read(lines, profile), profile), profile)
    data = (_read(lines, profile).join(F.broadcast(facts), "_source_file")
            .where(~F.array_contains("_header_reads", F.col("_read_order"))))
    text = F.col("_text")
    has_nul = F.col("_decoded").contains("\u0000")
    fields = split_fields(text, profile)

    def without_nul(column: Column) -> Column:
        return F.when(has_nul, F.translate(column, "\u0000", REPLACEMENT)).otherwise(column)

    columns = []
    for canonical in spec.columns:
        if profile.source_for(canonical) is None:
            columns.append(F.lit(None).cast("string").alias(canonical))
            continue
        position = F.col(f"_at_{canonical}")
        columns.append(without_nul(F.when(position > 0, F.try_element_at("_fields", position))).alias(canonical))

    has_quote = F.col("_decoded").contains(_QUOTE)
    quote_count = F.length("_decoded") - F.length(F.translate("_decoded", _QUOTE, ""))
    field_count, expected = F.size("_fields"), F.size("_layout")
    malformed = (
        F.coalesce(encoding_problem(F.col("_raw_bytes"), F.col("_decoded"), profile.encoding, F.col("_text_is_bytes")),
                   F.when(has_quote & (quote_count % 2 == 1), F.lit("unbalanced quotes"))
                   .when(field_count != expected,
                         F.format_string("%d fields where the layout has %d", field_count, expected)))
    )
    # Fields the profile does not use, by file column name, and surplus fields (no column). The test
    # first: in a file whose columns are all mapped, a line that fits its layout has none.
    mapped = F.array(*[F.lit(source.lower()) for _, source in profile.mapping])
    may_have_unused = (field_count > expected) | (F.col("_unmapped_columns") > 0)
    unused = F.filter(
        F.zip_with("_layout", "_fields", lambda column, field: F.struct(column.alias("column"), field.alias("value"))),
        lambda entry: entry["value"].isNotNull()
        & (entry["column"].isNull() | ~F.array_contains(mapped, entry["column"])),
    )
    rescued = F.when(may_have_unused & (F.size(unused) > 0), without_nul(F.to_json(unused)))
    # The bytes are kept only where the text does not already hold them: most lines would
    # otherwise be stored twice (BENCHMARKS.md).
    raw_line = without_nul(F.col("_decoded"))
    raw_bytes = F.when(~F.col("_text_is_bytes") | has_nul, F.col("_raw_bytes"))
    # Unique within a file by its place in the read; 128 bits (two 64-bit hashes) across files.
    place = F.col("_read_order") - F.col("_first_read")
    line_id = F.concat(*[F.lpad(F.hex(F.xxhash64(F.lit(salt), "_source_file", place)), 16, "0")
                         for salt in ("line", "id")])
    return data.withColumn("_fields", fields).select(
        *columns, raw_line.alias("_raw_line"), raw_bytes.alias("_raw_bytes"), rescued.alias("_rescued_data"),
        malformed.alias("_malformed"), "_source_file", F.lit(profile.name).alias("_source_profile"), "_ingested_at",
        line_id.alias("_line_id"), "_file_fingerprint")
