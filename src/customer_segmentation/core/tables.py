"""The table registry: every table and view the job writes, read from tables.yaml, where each is
stated once (layer, writing task, optional source, comment, columns, statistics columns).

Everything else that names tables or columns derives from it: the fully qualified names in the
settings, the tables a task owns, the canonical columns of each kind of landing data, the
clustering features, the checks of the optional sources' fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    TimestampType,
)

REGISTRY_FILE = Path(__file__).with_name("tables.yaml")
LAYERS = ("bronze", "silver", "gold")
OPTIONAL_SOURCES = ("customers", "engagement", "products")
_SIMPLE_TYPES = {"string": StringType(), "int": IntegerType(), "bigint": LongType(), "double": DoubleType(),
                 "boolean": BooleanType(), "date": DateType(), "timestamp": TimestampType(), "binary": BinaryType()}


def parse_type(text: str) -> DataType:
    """The Spark type of a Spark SQL type name: string, decimal(18,4), array<string>, map<string,bigint>, ..."""
    text = text.strip()
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    if found := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", text):
        return DecimalType(int(found.group(1)), int(found.group(2)))
    if found := re.fullmatch(r"array<(.+)>", text):
        return ArrayType(parse_type(found.group(1)))
    if found := re.fullmatch(r"map<([a-z]+),(.+)>", text):
        return MapType(parse_type(found.group(1)), parse_type(found.group(2)))
    raise ValueError(f"{REGISTRY_FILE}: unknown column type {text!r}")


@dataclass(frozen=True)
class Column:
    name: str
    type: DataType
    comment: str
    nullable: bool = True
    needs: str | None = None              # present only when this optional source is in use
    values: tuple[str, ...] = ()          # the allowed values, when the column has a vocabulary
    feature: str | None = None            # "numeric" or "categorical": a customer feature the model may use
    profiled: bool = False                # summarised per segment in segment_profiles
    check: dict = field(default_factory=dict, compare=False)  # how silver types and checks the field


@dataclass(frozen=True)
class TableSpec:
    """A table's columns and the comments analysts see in the catalog."""

    comment: str
    columns: tuple[Column, ...]
    # Columns Delta keeps min/max statistics of, for data skipping; None: Delta's default, the
    # first 32. Statistics of every column of a wide raw table are a large share of its write.
    stats_columns: tuple[str, ...] | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> str:
        """The columns as a DDL schema string, e.g. for `spark.createDataFrame(rows, spec.schema)`."""
        return ", ".join(f"`{c.name}` {c.type.simpleString()}" for c in self.columns)


@dataclass(frozen=True)
class Table:
    name: str
    layer: str
    written_by: str
    comment: str
    columns: tuple[Column, ...] = ()
    needs: str | None = None              # an optional source, or "any" of them
    view: bool = False
    stats_columns: tuple[str, ...] | None = None
    options: dict = field(default_factory=dict, compare=False)

    def in_use(self, sources: tuple[str, ...]) -> bool:
        """Whether the job writes this table when the given optional sources are in use."""
        return self.needs is None or self.needs in sources or (self.needs == "any" and bool(sources))

    def spec(self, sources: tuple[str, ...] = ()) -> TableSpec:
        """The columns the table has when the given optional sources are in use."""
        return TableSpec(self.comment, tuple(c for c in self.columns if c.needs is None or c.needs in sources),
                         self.stats_columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _flatten(columns: list) -> list[dict]:
    out: list[dict] = []
    for entry in columns:
        out.extend(_flatten(entry) if isinstance(entry, list) else [entry])
    return out


def _field_comment(comment: str, check: dict) -> str:
    """The comment of an optional source's field, with its levels and blank-value rule."""
    if check.get("levels"):
        comment += ": " + " < ".join(check["levels"])
    if "default" in check:
        comment += f"; blank becomes {check['default']}"
    elif check.get("kind") == "ordinal":
        comment += "; null when unknown"
    return comment


def _column(doc: dict) -> Column:
    check = doc.get("check") or {}
    comment = _field_comment(doc["comment"], check)
    if doc.get("values"):
        comment += ": " + ", ".join(doc["values"])
    feature = doc.get("feature")
    return Column(doc["name"], parse_type(doc["type"]), comment, needs=doc.get("needs"),
                  values=tuple(doc.get("values") or ()),
                  feature="numeric" if feature is True else feature, profiled=bool(doc.get("profiled")), check=check)


def _statistics(stats: list[str], profiled: list[Column]) -> list[Column]:
    """Columns `<stat>_<feature>` of every profiled customer feature."""
    return [Column(f"{stat}_{c.name}", DoubleType(), f"{stat.capitalize()} {c.name} of the segment's customers",
                   needs=c.needs) for c in profiled for stat in stats]


@cache
def registry() -> dict[str, Table]:
    """Every table and view, in the order of tables.yaml (the job's order)."""
    documents = yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8"))["tables"]
    tables: dict[str, Table] = {}
    for name, doc in documents.items():
        columns: list[Column] = []
        for entry in _flatten(doc.get("columns") or []):
            if "statistics" in entry:
                profiled = [c for c in tables["customer_features"].columns if c.profiled]
                columns.extend(_statistics(entry["statistics"], profiled))
            else:
                columns.append(_column(entry))
        options = doc.get("options") or {}
        tables[name] = Table(
            name=name, layer=doc["layer"], written_by=doc["written_by"], comment=doc["comment"].format(**options),
            columns=tuple(columns), needs=doc.get("needs"), view=bool(doc.get("view")),
            stats_columns=tuple(doc["stats_columns"]) if "stats_columns" in doc else None, options=options)
    return tables


def table(name: str) -> Table:
    return registry()[name]


def canonical_columns(source: str) -> tuple[str, ...]:
    """The canonical columns of a kind of landing data: its bronze table's columns before the lineage."""
    return tuple(c.name for c in table(f"{source}_raw").columns if not c.name.startswith("_"))


def customer_features(kind: str | None = None) -> tuple[str, ...]:
    """Columns of gold.customer_features the model may use (of one kind: numeric or categorical)."""
    return tuple(c.name for c in table("customer_features").columns if c.feature and kind in (None, c.feature))


class TableNames:
    """Fully qualified names (catalog.schema.table) of every table and view, by short name:
    `tables.orders`."""

    def __init__(self, catalog: str, schema_of_layer: dict[str, str]):
        self._names = {name: f"{catalog}.{schema_of_layer[t.layer]}.{name}" for name, t in registry().items()}

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["_names"][name]
        except KeyError:
            raise AttributeError(f"no table {name!r} in {REGISTRY_FILE.name}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableNames) and other._names == self._names

    def all(self) -> list[str]:
        return list(self._names.values())

    def written_by(self, task: str, sources: tuple[str, ...] = ()) -> list[str]:
        """The Delta tables `task` writes with the given optional sources in use."""
        return [self._names[t.name] for t in registry().values()
                if t.written_by == task and not t.view and t.in_use(sources)]

    def delta_tables(self, sources: tuple[str, ...] = ()) -> dict[str, str]:
        """Short name -> full name of every Delta table the job writes with the given optional
        sources in use (views left out)."""
        return {name: self._names[name] for name, t in registry().items() if not t.view and t.in_use(sources)}
