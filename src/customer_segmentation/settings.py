"""The one settings object: every name and knob of a run, validated once.

The same parameter table feeds the local CLI flags (`--k-max 8`), the notebook widgets and the
Databricks job parameters (`k_max`), so a setting has one name, one default and one rule.
Every value arrives as text and is parsed and checked here; a bad value is a `ConfigError`
that names the setting and says what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ALGORITHMS = ("kmeans", "bisecting_kmeans", "gaussian_mixture")
# Numeric columns of gold.customer_features that may be used as clustering features.
CLUSTERING_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "gross_revenue",
    "returns_value",
    "avg_order_value",
    "tenure_days",
    "distinct_products",
    "return_rate",
    "avg_days_between_orders",
)
DEFAULT_FEATURES = ("recency_days", "frequency", "monetary", "tenure_days", "avg_order_value")
# Columns gold adds to customer_features when the optional sources exist (see enrich.py).
ATTRIBUTE_FEATURES = ("age", "income", "education_level", "loyalty_level", "gender", "marital_status", "region")
ENGAGEMENT_FEATURES = ("emails_opened", "emails_clicked", "sessions", "page_views", "session_minutes",
                       "engagement_score", "behaviour_score", "spend_engagement")
ENRICHED_FEATURES = ATTRIBUTE_FEATURES + ENGAGEMENT_FEATURES
FEATURE_PRESETS = {
    "rfm": ("recency_days", "frequency", "monetary"),
    "rfm_plus": DEFAULT_FEATURES,
    # Everything the sources give; features whose source is not configured are left out (and logged).
    "full": DEFAULT_FEATURES + ("distinct_products", "return_rate", "age", "income", "education_level",
                                "loyalty_level", "gender", "marital_status", "region", "engagement_score",
                                "behaviour_score", "spend_engagement"),
}
OPTIONAL_SOURCES = ("customers", "engagement", "products")


def check_identifier(setting: str, value: str) -> str:
    if not IDENTIFIER_PATTERN.match(value):
        raise ConfigError(
            setting,
            f"{value!r} is not a valid identifier "
            "(letters, digits and underscores, not starting with a digit, at most 128 characters)",
        )
    return value


def _parse_int(setting: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a whole number") from None


def _parse_fraction(setting: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise ConfigError(setting, f"{value} is outside the allowed range 0 <= value < 1")
    return value


def _parse_correlation(setting: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise ConfigError(setting, f"{value} is outside the allowed range 0 < value <= 1")
    return value


def _parse_positive(setting: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a number") from None
    if value <= 0:
        raise ConfigError(setting, f"{value} must be greater than 0")
    return value


def _parse_date(setting: str, text: str) -> dt.date | None:
    if text in ("", "auto"):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a date in YYYY-MM-DD form (or 'auto')") from None


def _parse_choices(allowed: tuple[str, ...]) -> Callable[[str, str], tuple[str, ...]]:
    def parse(setting: str, text: str) -> tuple[str, ...]:
        values = tuple(part.strip() for part in text.split(",") if part.strip())
        if not values:
            raise ConfigError(setting, f"is empty; allowed: {', '.join(allowed)}")
        for value in values:
            if value not in allowed:
                raise ConfigError(setting, f"unknown value {value!r}; allowed: {', '.join(allowed)}")
        if len(set(values)) != len(values):
            raise ConfigError(setting, f"lists a value twice: {text!r}")
        return values

    return parse


def _parse_features(setting: str, text: str) -> tuple[str, ...]:
    """A preset name (rfm, rfm_plus, full) or a comma-separated list of feature columns."""
    if text.strip() in FEATURE_PRESETS:
        return FEATURE_PRESETS[text.strip()]
    return _parse_choices(CLUSTERING_FEATURES + ENRICHED_FEATURES)(setting, text)


def _parse_text(setting: str, text: str) -> str:
    if any(ord(ch) < 32 for ch in text):
        raise ConfigError(setting, "contains control characters")
    return text


def _parse_model_name(setting: str, text: str) -> str:
    # Local registry: a plain name. Unity Catalog: catalog.schema.model.
    parts = text.split(".")
    if len(parts) not in (1, 3):
        raise ConfigError(setting, f"{text!r} must be a name or a three-level catalog.schema.model name")
    for part in parts:
        check_identifier(setting, part)
    return text


@dataclass(frozen=True)
class Param:
    name: str
    default: str
    help: str
    parse: Callable[[str, str], object] = _parse_text


PARAMS: tuple[Param, ...] = (
    Param("catalog", "spark_catalog", "catalog of all tables (Unity Catalog on Databricks; spark_catalog locally)",
          check_identifier),
    Param("bronze_schema", "bronze", "schema of the raw landing tables", check_identifier),
    Param("silver_schema", "silver", "schema of the cleaned orders and their quarantine", check_identifier),
    Param("gold_schema", "gold", "schema of features, segments and insight tables", check_identifier),
    Param("landing_path", ".local/landing/transactions",
          "folder (a volume path on Databricks) where transaction files land"),
    Param("source_profile", "uci",
          "layout of the landing files: a built-in profile name (uci) or the path of a profile YAML file"),
    Param("customers_path", "", "optional folder of customer attribute files (default: none)"),
    Param("customers_profile", "customers", "layout of the customer files: built-in profile or YAML path"),
    Param("engagement_path", "", "optional folder of monthly engagement files (default: none)"),
    Param("engagement_profile", "engagement", "layout of the engagement files: built-in profile or YAML path"),
    Param("products_path", "", "optional folder of product catalogue files (default: none)"),
    Param("products_profile", "products", "layout of the product files: built-in profile or YAML path"),
    Param("state_root", ".local", "local only: folder for the warehouse, metastore, MLflow store and report"),
    Param("checkpoint_root", "", "folder for streaming checkpoints (default: <state_root>/checkpoints; "
          "a volume path on Databricks)"),
    Param("seed", "42", "random seed for sampling and model training", _parse_int),
    Param("as_of_date", "auto",
          "reference date of the features, YYYY-MM-DD (auto: the day after the latest invoice)", _parse_date),
    Param("k_min", "4", "smallest number of segments tried (silhouette favours 2 or 3 segments on RFM features, "
          "which lump the best customers with ordinary ones; 2 lets the metrics decide alone)", _parse_int),
    Param("k_max", "10", "largest number of segments tried", _parse_int),
    Param("algorithms", ",".join(ALGORITHMS), "comma-separated clustering algorithms to sweep: "
          + ", ".join(ALGORITHMS), _parse_choices(ALGORITHMS)),
    Param("features", ",".join(DEFAULT_FEATURES), "customer features used for clustering: a preset ("
          + ", ".join(FEATURE_PRESETS) + ") or a comma-separated list; allowed: "
          + ", ".join(CLUSTERING_FEATURES + ENRICHED_FEATURES), _parse_features),
    Param("kmeans_starts", "5",
          "k-means fits per k, each from another seeded start; the one with the lowest WCSS is kept "
          "(one start can stop in a poor local optimum)", _parse_int),
    Param("min_segment_share", "0.03",
          "champion rule: a segment is actionable if it holds at least this share of the modelled customers, "
          "or min_segment_revenue_share of their net revenue; a champion must have every segment actionable "
          "(if no candidate has, the one with the fewest segments that are not is chosen, and the run says so)",
          _parse_fraction),
    Param("min_segment_revenue_share", "0.1",
          "champion rule: a segment holding at least this share of the modelled customers' net revenue is "
          "actionable however few customers it has (see min_segment_share)", _parse_fraction),
    Param("selection_tolerance", "0.02",
          "champion rule: candidates within this much of the best silhouette count as tied, and the "
          "lowest Davies-Bouldin among them wins", _parse_fraction),
    Param("max_feature_correlation", "0.95",
          "features more correlated than this with an earlier feature are dropped before training "
          "(1 keeps all)", _parse_correlation),
    Param("silhouette_sample_size", "2000",
          "customers sampled for the Euclidean silhouette reported next to the exact squared one", _parse_int),
    Param("experiment_name", "customer_segmentation",
          "MLflow experiment (a workspace path such as /Shared/customer_segmentation on Databricks)"),
    Param("model_name", "customer_segmentation",
          "registered model name (catalog.schema.model in Unity Catalog)", _parse_model_name),
    Param("currency", "GBP", "currency of the prices, shown in plots and the report"),
    Param("max_abs_quantity", "1000000",
          "order lines with a larger absolute quantity are quarantined as absurd", _parse_positive),
    Param("max_unit_price", "1000000",
          "order lines with a larger unit price are quarantined as absurd", _parse_positive),
    Param("model_staging_path", "",
          "folder Spark writes models through before MLflow logs them (default: <state_root>/mlflow/staging; "
          "a /Volumes path on Databricks)"),
    Param("run_id", "", "identifier of this job run, recorded with what it writes (default: generated)"),
)
PARAMS_BY_NAME = {param.name: param for param in PARAMS}


VIEWS = ("segment_migration", "segment_summary", "customer_latest_segment")
OPTIONAL_TABLES_OF = {
    "customers": ("customers_raw", "customers", "customers_quarantine", "segment_attributes"),
    "engagement": ("engagement_raw", "engagement", "engagement_quarantine"),
    "products": ("products_raw", "products", "products_quarantine", "segment_categories"),
}
OPTIONAL_TABLES = tuple(t for tables in OPTIONAL_TABLES_OF.values() for t in tables) + ("source_quality",)


@dataclass(frozen=True)
class TableNames:
    """Fully qualified names of every table the job writes (catalog.schema.table)."""

    transactions_raw: str
    orders: str
    orders_quarantine: str
    quality_log: str
    customer_features: str
    rfm_segments: str
    monthly_revenue: str
    revenue_by_weekday: str
    revenue_by_country: str
    top_products: str
    top_customers: str
    lost_customers_monthly: str
    revenue_concentration: str
    clustering_metrics: str
    customer_segments: str
    segment_profiles: str
    segment_history: str
    value_tiers: str
    segment_migration: str
    segment_summary: str
    customer_latest_segment: str
    # Written only when optional sources are in use.
    customers_raw: str
    engagement_raw: str
    products_raw: str
    customers: str
    customers_quarantine: str
    engagement: str
    engagement_quarantine: str
    products: str
    products_quarantine: str
    source_quality: str
    segment_categories: str
    segment_attributes: str

    @classmethod
    def build(cls, catalog: str, bronze: str, silver: str, gold: str) -> "TableNames":
        schema_of_table = {
            "transactions_raw": bronze, "customers_raw": bronze, "engagement_raw": bronze, "products_raw": bronze,
            "orders": silver, "orders_quarantine": silver, "quality_log": silver, "source_quality": silver,
            **{name: silver for source in OPTIONAL_SOURCES for name in (source, f"{source}_quarantine")},
        }
        return cls(**{
            name: f"{catalog}.{schema_of_table.get(name, gold)}.{name}"
            for name in (f.name for f in dataclasses.fields(cls))
        })

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def delta_tables(self, sources: tuple[str, ...] = ()) -> dict[str, str]:
        """Short name -> full name of every Delta table the job writes when the given optional
        sources are in use (views left out)."""
        wanted = {t for source in sources for t in OPTIONAL_TABLES_OF[source]} | ({"source_quality"} if sources else set())
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in VIEWS and (f.name not in OPTIONAL_TABLES or f.name in wanted)}


@dataclass(frozen=True)
class Settings:
    catalog: str = "spark_catalog"
    bronze_schema: str = "bronze"
    silver_schema: str = "silver"
    gold_schema: str = "gold"
    landing_path: str = ".local/landing/transactions"
    source_profile: str = "uci"
    customers_path: str = ""
    customers_profile: str = "customers"
    engagement_path: str = ""
    engagement_profile: str = "engagement"
    products_path: str = ""
    products_profile: str = "products"
    state_root: str = ".local"
    checkpoint_root: str = ""
    seed: int = 42
    as_of_date: dt.date | None = None
    k_min: int = 4
    k_max: int = 10
    algorithms: tuple[str, ...] = ALGORITHMS
    features: tuple[str, ...] = DEFAULT_FEATURES
    kmeans_starts: int = 5
    min_segment_share: float = 0.03
    min_segment_revenue_share: float = 0.1
    selection_tolerance: float = 0.02
    max_feature_correlation: float = 0.95
    silhouette_sample_size: int = 2000
    experiment_name: str = "customer_segmentation"
    model_name: str = "customer_segmentation"
    currency: str = "GBP"
    max_abs_quantity: float = 1_000_000
    max_unit_price: float = 1_000_000
    model_staging_path: str = ""
    run_id: str = ""
    tables: TableNames = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("catalog", "bronze_schema", "silver_schema", "gold_schema"):
            check_identifier(name, getattr(self, name))
        if self.k_min < 2:
            raise ConfigError("k_min", f"{self.k_min} is below 2; a segmentation needs at least 2 segments")
        if self.k_max < self.k_min:
            raise ConfigError("k_max", f"{self.k_max} is below k_min={self.k_min}: the k range is empty")
        if self.k_max > 50:
            raise ConfigError("k_max", f"{self.k_max} is above 50 segments, more than marketing can act on")
        if not self.landing_path:
            raise ConfigError("landing_path", "is empty")
        if not self.features:
            raise ConfigError("features", "is empty")
        if not 1 <= self.kmeans_starts <= 50:
            raise ConfigError("kmeans_starts", f"{self.kmeans_starts} is outside 1-50")
        if self.silhouette_sample_size < 10:
            raise ConfigError("silhouette_sample_size", f"{self.silhouette_sample_size} is below 10")
        object.__setattr__(
            self, "tables",
            TableNames.build(self.catalog, self.bronze_schema, self.silver_schema, self.gold_schema),
        )

    @classmethod
    def from_params(cls, values: Mapping[str, str | None]) -> "Settings":
        """Build from text values keyed by parameter name; missing or None means the default."""
        unknown = sorted(set(values) - set(PARAMS_BY_NAME))
        if unknown:
            raise ConfigError(unknown[0], f"is not a known setting; known: {', '.join(PARAMS_BY_NAME)}")
        parsed = {}
        for param in PARAMS:
            text = values.get(param.name)
            text = param.default if text is None else str(text).strip()
            parsed[param.name] = param.parse(param.name, text)
        return cls(**parsed)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def to_params(self) -> dict[str, str]:
        """The settings as text parameters (inverse of from_params), e.g. for MLflow or a subprocess."""
        out = {}
        for param in PARAMS:
            value = getattr(self, param.name)
            if isinstance(value, tuple):
                value = ",".join(value)
            elif value is None:
                value = "auto"
            out[param.name] = str(value)
        return out

    @property
    def sources_in_use(self) -> tuple[str, ...]:
        """The optional sources whose folder is set, in a fixed order."""
        return tuple(name for name in OPTIONAL_SOURCES if getattr(self, f"{name}_path"))

    @property
    def schemas(self) -> tuple[str, str, str]:
        return (self.bronze_schema, self.silver_schema, self.gold_schema)

    @property
    def checkpoints(self) -> str:
        return self.checkpoint_root or str(Path(self.state_root) / "checkpoints")

    def checkpoint(self, target_table: str) -> str:
        """Checkpoint of the stream writing `target_table`: named after it, so settings that
        share a state folder but write other tables never share a checkpoint."""
        return f"{self.checkpoints.rstrip('/')}/{target_table}"

    @property
    def mlflow_dir(self) -> Path:
        return Path(self.state_root).resolve() / "mlflow"

    @property
    def model_staging(self) -> str:
        return self.model_staging_path or str(self.mlflow_dir / "staging")

    @property
    def report_dir(self) -> Path:
        return Path(self.state_root).resolve() / "report"


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ
