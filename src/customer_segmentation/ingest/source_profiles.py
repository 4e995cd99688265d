"""Source profiles: how a landing file layout maps onto the canonical columns.

A profile is a small YAML file (see config/profiles/uci.yaml and the README):

    name: my_shop
    delimiter: ";"             # one character, "tab", or "whitespace" (runs of spaces/tabs)
    header: true               # first line of each file names the columns
    timestamp_formats: ["dd/MM/yyyy HH:mm"]   # Spark datetime patterns, tried in order
    columns:                   # file columns in order: source name -> canonical column
      Order Date: invoice_date
      Client: customer_id
      Qty: quantity
      Total: line_amount       # an amount per line instead of a unit price
      Notes: ~                 # known, not used

With a header, columns are found by name (any order); without one, by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..core.errors import ConfigError
from ..core.rules import CONFIG_DIR
from ..core.tables import canonical_columns

PROFILE_DIR = CONFIG_DIR / "profiles"
PROFILE_KEYS = {"name", "description", "delimiter", "header", "timestamp_formats", "columns", "file_glob", "encoding",
                "key"}
# Encodings a profile may name (`encoding:`), by alias. Lines are split at the encoding's newline.
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1",
             "windows-1252": "windows-1252", "cp1252": "windows-1252", "utf-16": "utf-16le", "utf-16le": "utf-16le",
             "utf-16be": "utf-16be"}
DELIMITER_ALIASES = {"tab": "\t", "whitespace": "whitespace", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True)
class SourceSpec:
    """A kind of landing data: which of its canonical columns (those of its bronze table, in
    core/tables.yaml) a profile must map."""

    name: str
    required: tuple[str, ...]
    required_any: tuple[tuple[str, ...], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return canonical_columns(self.name)

    @property
    def bronze_table(self) -> str:
        return f"{self.name}_raw"


TRANSACTIONS = SourceSpec("transactions", required=("quantity", "invoice_date", "customer_id"),
                          required_any=(("unit_price", "line_amount"),))
# Optional sources: who the customers are, how they engage, what the products are.
CUSTOMERS = SourceSpec("customers", required=("customer_id",))
ENGAGEMENT = SourceSpec("engagement", required=("customer_id", "month"))
PRODUCTS = SourceSpec("products", required=("stock_code", "category"))
OPTIONAL_SOURCES = (CUSTOMERS, ENGAGEMENT, PRODUCTS)


@dataclass(frozen=True)
class SourceProfile:
    name: str
    delimiter: str                       # a single character or "whitespace"
    header: bool
    source_columns: tuple[str, ...]      # file columns in order
    mapping: tuple[tuple[str, str], ...]  # (canonical, source) for every used column
    timestamp_formats: tuple[str, ...]
    file_glob: str | None = None
    description: str = ""
    encoding: str = "utf-8"
    # The columns that identify a line: a second line with the same values is a duplicate. None:
    # the layout cannot tell two purchases apart, so identical lines are separate purchases and
    # only a file delivered again is a duplicate.
    key: tuple[str, ...] | None = None

    def source_for(self, canonical: str) -> str | None:
        return dict(self.mapping).get(canonical)


def _fail(setting: str, where: str, message: str) -> ConfigError:
    return ConfigError(setting, f"profile {where}: {message}")


def parse_profile(document: object, spec: SourceSpec, where: str, setting: str = "source_profile") -> SourceProfile:
    if not isinstance(document, dict):
        raise _fail(setting, where, "must be a YAML mapping")
    unknown = sorted(set(document) - PROFILE_KEYS)
    if unknown:
        raise _fail(setting, where, f"unknown key '{unknown[0]}'; allowed: {', '.join(sorted(PROFILE_KEYS))}")
    delimiter = str(document.get("delimiter", ","))
    delimiter = DELIMITER_ALIASES.get(delimiter, delimiter)
    if delimiter != "whitespace" and (len(delimiter) != 1 or delimiter in "\"\r\n"):
        raise _fail(setting, where, f"delimiter {delimiter!r} must be one character, 'tab' or 'whitespace'")
    header = document.get("header", True)
    if not isinstance(header, bool):
        raise _fail(setting, where, "header must be true or false")
    columns = document.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise _fail(setting, where, "columns must map each file column to a canonical column")
    mapping: dict[str, str] = {}
    for source, canonical in columns.items():
        source = str(source).strip()
        if not source:
            raise _fail(setting, where, "a column has an empty name")
        if canonical is None:
            continue
        if canonical not in spec.columns:
            raise _fail(setting, where, f"column '{source}' maps to unknown canonical column '{canonical}'; "
                                        f"allowed: {', '.join(spec.columns)}")
        if canonical in mapping:
            raise _fail(setting, where, f"canonical column '{canonical}' is mapped twice")
        mapping[canonical] = source
    lowered = [str(s).strip().lower() for s in columns]
    if len(set(lowered)) != len(lowered):
        raise _fail(setting, where, "two file columns have the same name")
    missing = [c for c in spec.required if c not in mapping]
    for group in spec.required_any:
        if not any(c in mapping for c in group):
            missing.append(" or ".join(group))
    if missing:
        raise _fail(setting, where, f"no column is mapped to {', '.join(missing)}")
    encoding = ENCODINGS.get(str(document.get("encoding", "utf-8")).strip().lower())
    if encoding is None:
        raise _fail(setting, where, f"encoding {document.get('encoding')!r} is not one of "
                                    f"{', '.join(sorted(set(ENCODINGS.values())))}")
    key = document.get("key")
    if key is not None:
        if isinstance(key, str):
            key = [key]
        if not isinstance(key, list) or not key or not all(isinstance(c, str) for c in key):
            raise _fail(setting, where, "key must be a list of canonical columns")
        unmapped = [c for c in key if c not in mapping]
        if unmapped:
            raise _fail(setting, where, f"key column '{unmapped[0]}' is not mapped by columns")
        key = tuple(c for c in spec.columns if c in key)  # canonical order: the same key, the same hash
    formats = document.get("timestamp_formats", ["yyyy-MM-dd HH:mm:ss"])
    if isinstance(formats, str):
        formats = [formats]
    if not formats or not all(isinstance(f, str) and f for f in formats):
        raise _fail(setting, where, "timestamp_formats must be a list of Spark datetime patterns")
    return SourceProfile(
        name=str(document.get("name", Path(where).stem)),
        delimiter=delimiter,
        header=header,
        source_columns=tuple(str(s).strip() for s in columns),
        mapping=tuple(sorted(mapping.items())),
        timestamp_formats=tuple(formats),
        file_glob=document.get("file_glob"),
        description=str(document.get("description", "")),
        encoding=encoding,
        key=key,
    )


def load_profile(name_or_path: str, spec: SourceSpec = TRANSACTIONS, setting: str = "source_profile") -> SourceProfile:
    """A built-in profile by name, or a profile YAML file by path."""
    builtin = PROFILE_DIR / f"{name_or_path}.yaml"
    path = builtin if builtin.is_file() else Path(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
        raise ConfigError(setting, f"{name_or_path!r} is neither a built-in profile ({known}) nor a profile file")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(setting, f"profile {path} is not valid YAML: {error}".splitlines()[0]) from None
    return parse_profile(document, spec, str(path), setting)
