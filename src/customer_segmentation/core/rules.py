"""Editable business rules kept in config/*.yaml: cleaning, rule-based RFM segments, segment names.

Each file is validated when it is loaded: a mistake is one `RulesError` naming the file, the
entry and what is wrong, never a stack trace or a silently odd result.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from .errors import UserError

CONFIG_DIR = Path(__file__).parents[1] / "config"
# Segment-name dimensions: the standing a catalogue entry describes, in this order.
DIMENSIONS = ("recency", "frequency", "monetary", "order_value", "tenure")
# A segment's activity, from how long its customers have been quiet against their own rhythm.
ACTIVITIES = ("active", "lapsing", "lapsed")


class RulesError(UserError):
    """A rule file is not valid: the message names the file, the entry and the problem."""

    def __init__(self, file: str, entry: str, message: str):
        super().__init__(f"{file}: {entry}: {message}")


class _Reader:
    """Typed access to one YAML document, every failure naming the file and entry."""

    def __init__(self, path: Path):
        self.file = str(path)
        try:
            self.document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
            raise RulesError(self.file, "(file)", f"cannot be read as YAML: {str(error).splitlines()[0]}") from None
        if not isinstance(self.document, dict):
            raise RulesError(self.file, "(file)", "must be a YAML mapping")

    def fail(self, entry: str, message: str) -> RulesError:
        return RulesError(self.file, entry, message)

    def keys(self, mapping: object, entry: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        if not isinstance(mapping, dict):
            raise self.fail(entry, "must be a mapping")
        unknown = sorted(set(mapping) - required - optional)
        if unknown:
            raise self.fail(entry, f"unknown key '{unknown[0]}'; allowed: {', '.join(sorted(required | optional))}")
        missing = sorted(required - set(mapping))
        if missing:
            raise self.fail(entry, f"missing key '{missing[0]}'")
        return mapping

    def text(self, value: object, entry: str) -> str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
            raise self.fail(entry, f"must be non-empty text, not {value!r}")
        return str(value).strip()

    def number(self, value: object, entry: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self.fail(entry, f"{value!r} is not a number within {low:g}..{high:g}")
        return float(value)

    def non_empty_list(self, value: object, entry: str) -> list:
        if not isinstance(value, list) or not value:
            raise self.fail(entry, "must be a non-empty list")
        return value

    def unique(self, names: list[str], entry: str) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name.lower() in seen:
                raise self.fail(f"{entry}[{index}]", f"name {name!r} appears twice")
            seen.add(name.lower())


@dataclass(frozen=True)
class CleaningRules:
    non_product_codes: tuple[str, ...]      # upper case
    non_product_prefixes: tuple[str, ...]   # upper case
    missing_customer_tokens: tuple[str, ...]  # lower case
    earliest_plausible_date: dt.date
    future_tolerance_days: int


def parse_cleaning_rules(path: Path) -> CleaningRules:
    reader = _Reader(path)
    doc = reader.keys(reader.document, "(file)", {"non_product_codes", "non_product_prefixes",
                                                  "missing_customer_tokens", "earliest_plausible_date",
                                                  "future_tolerance_days"})

    def codes(key: str) -> tuple[str, ...]:
        value = doc[key] or {}
        if not isinstance(value, dict):
            raise reader.fail(key, "must map each code to what it is")
        return tuple(reader.text(code, f"{key}.{code}").upper() for code in value)

    tokens = doc["missing_customer_tokens"]
    if not isinstance(tokens, list):
        raise reader.fail("missing_customer_tokens", "must be a list")
    try:
        earliest = dt.date.fromisoformat(str(doc["earliest_plausible_date"]))
    except ValueError:
        raise reader.fail("earliest_plausible_date",
                          f"{doc['earliest_plausible_date']!r} is not a YYYY-MM-DD date") from None
    tolerance = doc["future_tolerance_days"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise reader.fail("future_tolerance_days", f"{tolerance!r} is not a whole number of days (0 or more)")
    return CleaningRules(
        non_product_codes=codes("non_product_codes"),
        non_product_prefixes=codes("non_product_prefixes"),
        missing_customer_tokens=tuple(str(token).strip().lower() for token in tokens),
        earliest_plausible_date=earliest,
        future_tolerance_days=tolerance,
    )


@cache
def cleaning_rules() -> CleaningRules:
    return parse_cleaning_rules(CONFIG_DIR / "cleaning.yaml")


@dataclass(frozen=True)
class RfmRule:
    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    meaning: str

    def matches(self, r: int, f: int, m: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1] and self.m[0] <= m <= self.m[1]


def parse_rfm_rules(path: Path) -> tuple[RfmRule, ...]:
    reader = _Reader(path)
    entries = reader.non_empty_list(reader.keys(reader.document, "(file)", {"segments"})["segments"], "segments")
    rules = []
    for index, entry in enumerate(entries):
        where = f"segments[{index}]"
        reader.keys(entry, where, {"name", "r", "f", "m"}, {"meaning"})
        name = reader.text(entry["name"], f"{where}.name")
        ranges = {}
        for key in ("r", "f", "m"):
            value = entry[key]
            if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) for v in value)
                    or not 1 <= value[0] <= value[1] <= 5):
                raise reader.fail(f"{where} ({name}).{key}", f"{value!r} is not a range [low, high] within 1..5")
            ranges[key] = (value[0], value[1])
        rules.append(RfmRule(name, ranges["r"], ranges["f"], ranges["m"], str(entry.get("meaning", ""))))
    reader.unique([rule.name for rule in rules], "segments")
    uncovered = [cell for cell in itertools.product(range(1, 6), repeat=3)
                 if not any(rule.matches(*cell) for rule in rules)]
    if uncovered:
        raise reader.fail("segments", f"the rules leave {len(uncovered)} score cells without a segment, "
                                      f"e.g. r,f,m = {uncovered[0]}")
    return tuple(rules)


@cache
def rfm_rules() -> tuple[RfmRule, ...]:
    return parse_rfm_rules(CONFIG_DIR / "rfm_segments.yaml")


@dataclass(frozen=True)
class CatalogueName:
    name: str
    standing: tuple[float, ...]   # in DIMENSIONS order
    action: str
    activity: str = "active"


@dataclass(frozen=True)
class RuleSegment:
    """The segment of customers the model does not see: those without net purchases of goods."""

    name: str
    description: str
    action: str


@dataclass(frozen=True)
class Activity:
    """Thresholds on a customer's inactivity: days since the last purchase divided by their usual
    days between purchases (the shop's median for customers who bought only once)."""

    lapsing_after: float
    lapsed_after: float

    def of(self, inactivity: float | None) -> str | None:
        if inactivity is None:
            return None
        return "active" if inactivity <= self.lapsing_after else "lapsing" if inactivity <= self.lapsed_after \
            else "lapsed"


@dataclass(frozen=True)
class SegmentCatalogue:
    names: tuple[CatalogueName, ...]
    without_net_purchases: RuleSegment
    activity: Activity


def parse_segment_catalogue(path: Path) -> SegmentCatalogue:
    reader = _Reader(path)
    doc = reader.keys(reader.document, "(file)", {"names", "without_net_purchases", "activity"})
    activity_doc = reader.keys(doc["activity"], "activity", {"lapsing_after", "lapsed_after"})
    activity = Activity(reader.number(activity_doc["lapsing_after"], "activity.lapsing_after", 0, 1000),
                        reader.number(activity_doc["lapsed_after"], "activity.lapsed_after", 0, 1000))
    if activity.lapsed_after <= activity.lapsing_after:
        raise reader.fail("activity", "lapsed_after must be greater than lapsing_after")
    rule_doc = reader.keys(doc["without_net_purchases"], "without_net_purchases", {"name", "description", "action"})
    rule = RuleSegment(*(reader.text(rule_doc[key], f"without_net_purchases.{key}")
                         for key in ("name", "description", "action")))
    names = []
    for index, entry in enumerate(reader.non_empty_list(doc["names"], "names")):
        where = f"names[{index}]"
        reader.keys(entry, where, {"name", "standing", "action", "activity"})
        name = reader.text(entry["name"], f"{where}.name")
        where = f"{where} ({name})"
        standing = reader.keys(entry["standing"], f"{where}.standing", set(DIMENSIONS))
        if entry["activity"] not in ACTIVITIES:
            raise reader.fail(f"{where}.activity", f"{entry['activity']!r} is not one of {', '.join(ACTIVITIES)}")
        names.append(CatalogueName(
            name, tuple(reader.number(standing[d], f"{where}.standing.{d}", 0, 1) for d in DIMENSIONS),
            reader.text(entry["action"], f"{where}.action"), entry["activity"]))
    reader.unique([n.name for n in names], "names")
    if rule.name.lower() in {n.name.lower() for n in names}:
        raise reader.fail("without_net_purchases.name", f"{rule.name!r} is also a name in names")
    for activity_name in ACTIVITIES:
        if not any(n.activity == activity_name for n in names):
            raise reader.fail("names", f"no name has activity '{activity_name}': every activity needs at least one")
    return SegmentCatalogue(tuple(names), rule, activity)


@cache
def segment_catalogue() -> SegmentCatalogue:
    return parse_segment_catalogue(CONFIG_DIR / "segment_names.yaml")
