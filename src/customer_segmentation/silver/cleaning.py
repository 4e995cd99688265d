"""How silver reads raw values: blanks, customer ids, product codes, timestamps (pure Column functions).

One definition of each, used for orders, for the optional sources and wherever a raw value is read
again (the report's count of customers seen only on rejected lines).
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from ..core.rules import CleaningRules


def is_blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def clean_customer_id(raw: Column, rules: CleaningRules) -> Column:
    """`17850.0` -> `17850`; empty, `nan`, `none`, `n/a` and the like -> null."""
    trimmed = F.trim(raw)
    missing = trimmed.isNull() | F.lower(trimmed).isin(*rules.missing_customer_tokens)
    integral = F.regexp_extract(trimmed, r"^(\d+)\.0+$", 1)
    return F.when(missing, F.lit(None).cast("string")).when(integral != "", integral).otherwise(trimmed)


def is_product_code(code: Column, rules: CleaningRules) -> Column:
    upper = F.upper(F.trim(code))
    service = upper.isin(*rules.non_product_codes)
    for prefix in rules.non_product_prefixes:
        service = service | upper.startswith(prefix)
    return code.isNull() | ~service


# The default layout's timestamps. Spark's cast reads exactly this shape with its own parser, several
# times faster than a pattern (java.time): on a string of this shape both give the same instant, or
# both none (BENCHMARKS.md). `\z`, not `$`: `$` also matches before a final line break.
ISO_PATTERN = "yyyy-MM-dd HH:mm:ss"
_ISO_SHAPE = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\z"


def parse_timestamp(raw: Column, formats: tuple[str, ...]) -> Column:
    """The first of `formats` (Spark datetime patterns) that reads the trimmed text; null if none does."""
    trimmed = F.trim(raw)
    parsed = F.coalesce(*[F.try_to_timestamp(trimmed, F.lit(fmt)) for fmt in formats])
    if formats[0] != ISO_PATTERN:
        return parsed
    return F.coalesce(F.when(trimmed.rlike(_ISO_SHAPE), trimmed.try_cast("timestamp")), parsed)
