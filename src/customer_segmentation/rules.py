"""Editable business rules kept in config/*.yaml: cleaning rules and rule-based RFM segments."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent / "config"


@dataclass(frozen=True)
class CleaningRules:
    non_product_codes: tuple[str, ...]      # upper case
    non_product_prefixes: tuple[str, ...]   # upper case
    missing_customer_tokens: tuple[str, ...]  # lower case
    earliest_plausible_date: dt.date
    future_tolerance_days: int


@cache
def cleaning_rules() -> CleaningRules:
    doc = yaml.safe_load((CONFIG_DIR / "cleaning.yaml").read_text(encoding="utf-8"))
    return CleaningRules(
        non_product_codes=tuple(str(code).upper() for code in doc["non_product_codes"]),
        non_product_prefixes=tuple(str(prefix).upper() for prefix in doc["non_product_prefixes"]),
        missing_customer_tokens=tuple(str(token).lower() for token in doc["missing_customer_tokens"]),
        earliest_plausible_date=dt.date.fromisoformat(str(doc["earliest_plausible_date"])),
        future_tolerance_days=int(doc["future_tolerance_days"]),
    )


@dataclass(frozen=True)
class RfmRule:
    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    meaning: str

    def matches(self, r: int, f: int, m: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1] and self.m[0] <= m <= self.m[1]


def parse_rfm_rules(doc: dict) -> tuple[RfmRule, ...]:
    rules = []
    for entry in doc["segments"]:
        ranges = {}
        for key in ("r", "f", "m"):
            low, high = entry[key]
            if not 1 <= low <= high <= 5:
                raise ValueError(f"RFM rule {entry['name']!r}: {key} range {entry[key]} is not within 1..5")
            ranges[key] = (int(low), int(high))
        rules.append(RfmRule(str(entry["name"]), ranges["r"], ranges["f"], ranges["m"], str(entry.get("meaning", ""))))
    uncovered = [cell for cell in itertools.product(range(1, 6), repeat=3)
                 if not any(rule.matches(*cell) for rule in rules)]
    if uncovered:
        raise ValueError(f"RFM rules leave {len(uncovered)} cells without a segment, e.g. r,f,m = {uncovered[0]}")
    return tuple(rules)


@cache
def rfm_rules() -> tuple[RfmRule, ...]:
    return parse_rfm_rules(yaml.safe_load((CONFIG_DIR / "rfm_segments.yaml").read_text(encoding="utf-8")))
