"""The one settings object: every name and knob of a run, validated once.

`PARAMS` is the registry: each parameter's name, default, help, parser and the tasks that read
it, stated once. The `Settings` fields are generated from it, and so are the CLI flags (`--k-max
8`), each notebook's widgets (a notebook names its task) and what the offline bundle check
compares the Databricks job's parameters with (`k_max`). Every value arrives as text and is
parsed and checked here; a bad value is a `ConfigError` that names the setting and says what is
allowed. A task reading a setting the registry does not list for it fails at once: on
Databricks its notebook would not have received it, and it would silently use the default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, PipelineError
from .tables import OPTIONAL_SOURCES, TableNames, customer_features, table

IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ALGORITHMS = ("kmeans", "bisecting_kmeans", "gaussian_mixture")
# The job's tasks, in order.
TASKS = ("bronze", "silver", "gold_features", "train", "lifetime_value", "publish")
DEFAULT_FEATURES = ("recency_days", "frequency", "monetary", "tenure_days", "avg_order_value")
FEATURE_PRESETS = {
    "rfm": ("recency_days", "frequency", "monetary"),
    "rfm_plus": DEFAULT_FEATURES,
    # Everything the sources give; features whose source is not configured are left out (and logged).
    "full": DEFAULT_FEATURES + ("distinct_products", "return_rate", "age", "income", "education_level",
                                "loyalty_level", "gender", "marital_status", "region", "engagement_score",
                                "behaviour_score", "spend_engagement"),
}


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


def _number(low: float, high: float | None, closed: str) -> Callable[[str, str], float]:
    """A parser for numbers in a range; `closed` says which ends are allowed: "low", "high" or "neither"."""
    def parse(setting: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(setting, f"{text!r} is not a number") from None
        above = value >= low if closed == "low" else value > low
        below = high is None or (value <= high if closed == "high" else value < high)
        if not (above and below):
            if high is None:
                raise ConfigError(setting, f"{value} must be greater than {low:g}")
            low_sign, high_sign = ("<=" if closed == "low" else "<"), ("<=" if closed == "high" else "<")
            raise ConfigError(setting, f"{value} is outside the allowed range {low:g} {low_sign} value {high_sign} "
                                       f"{high:g}")
        return value

    return parse


_parse_fraction = _number(0.0, 1.0, "low")
_parse_positive = _number(0.0, None, "neither")


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
    return _parse_choices(customer_features())(setting, text)


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
    # The tasks that read it; the job gives it to their notebooks as a widget of the same name.
    tasks: tuple[str, ...] = TASKS
    # Its default in the Databricks job when that differs: a bundle variable or a job reference.
    job_default: str | None = None
    # A local setting only: no job parameter, no widget (every task may read it).
    local: bool = False


SOURCE_TASKS = ("bronze", "silver", "gold_features", "publish")  # every task that uses the optional sources
MODEL_TASKS = ("train", "lifetime_value", "publish")

PARAMS: tuple[Param, ...] = (
    Param("catalog", "spark_catalog", "catalog of all tables (Unity Catalog on Databricks; spark_catalog locally)",
          check_identifier, job_default="${var.catalog}"),
    Param("bronze_schema", "bronze", "schema of the raw landing tables", check_identifier,
          job_default="${var.bronze_schema}"),
    Param("silver_schema", "silver", "schema of the cleaned orders and their quarantine", check_identifier,
          job_default="${var.silver_schema}"),
    Param("gold_schema", "gold", "schema of features, segments and insight tables", check_identifier,
          job_default="${var.gold_schema}"),
    Param("landing_path", ".local/landing/transactions",
          "folder (a volume path on Databricks) where transaction files land", tasks=("bronze", "train"),
          job_default="${var.landing_path}"),
    Param("source_profile", "uci",
          "layout of the landing files: a built-in profile name (uci) or the path of a profile YAML file",
          tasks=("bronze", "silver", "train")),
    Param("customers_path", "", "optional folder of customer attribute files (default: none)", tasks=SOURCE_TASKS,
          job_default="${var.customers_path}"),
    Param("customers_profile", "customers", "layout of the customer files: built-in profile or YAML path",
          tasks=("bronze",)),
    Param("engagement_path", "", "optional folder of monthly engagement files (default: none)", tasks=SOURCE_TASKS,
          job_default="${var.engagement_path}"),
    Param("engagement_profile", "engagement", "layout of the engagement files: built-in profile or YAML path",
          tasks=("bronze",)),
    Param("products_path", "", "optional folder of product catalogue files (default: none)", tasks=SOURCE_TASKS,
          job_default="${var.products_path}"),
    Param("products_profile", "products", "layout of the product files: built-in profile or YAML path",
          tasks=("bronze",)),
    Param("state_root", ".local", "local only: folder for the warehouse, metastore, MLflow store and report",
          local=True),
    Param("checkpoint_root", "", "folder for streaming checkpoints (default: <state_root>/checkpoints; "
          "a volume path on Databricks)", tasks=("bronze", "silver"), job_default="${var.checkpoint_root}"),
    Param("seed", "42", "random seed for sampling and model training", _parse_int, tasks=("train",)),
    Param("as_of_date", "auto",
          "reference date of the features, YYYY-MM-DD (auto: the day after the latest invoice)", _parse_date,
          tasks=("gold_features",)),
    Param("k_min", "4", "smallest number of segments tried (silhouette favours 2 or 3 segments on RFM features, "
          "which lump the best customers with ordinary ones; 2 lets the metrics decide alone)", _parse_int,
          tasks=("train",)),
    Param("k_max", "10", "largest number of segments tried", _parse_int, tasks=("train",)),
    Param("algorithms", ",".join(ALGORITHMS), "comma-separated clustering algorithms to sweep: "
          + ", ".join(ALGORITHMS), _parse_choices(ALGORITHMS), tasks=("train",)),
    Param("features", ",".join(DEFAULT_FEATURES), "customer features used for clustering: a preset ("
          + ", ".join(FEATURE_PRESETS) + ") or a comma-separated list; allowed: "
          + ", ".join(customer_features()), _parse_features, tasks=("train",)),
    Param("kmeans_starts", "5",
          "k-means fits per k, each from another seeded start; the one with the lowest WCSS is kept "
          "(one start can stop in a poor local optimum)", _parse_int, tasks=("train",)),
    Param("min_segment_share", "0.03",
          "champion rule: a segment is actionable if it holds at least this share of the modelled customers, "
          "or min_segment_revenue_share of their net revenue; a champion must have every segment actionable "
          "(if no candidate has, the one with the fewest segments that are not is chosen, and the run says so)",
          _parse_fraction, tasks=("train",)),
    Param("min_segment_revenue_share", "0.1",
          "champion rule: a segment holding at least this share of the modelled customers' net revenue is "
          "actionable however few customers it has (see min_segment_share)", _parse_fraction, tasks=("train",)),
    Param("selection_tolerance", "0.02",
          "champion rule: candidates within this much of the best silhouette count as tied, and the "
          "lowest Davies-Bouldin among them wins", _parse_fraction, tasks=("train",)),
    Param("max_feature_correlation", "0.95",
          "features more correlated than this with an earlier feature are dropped before training "
          "(1 keeps all)", _number(0.0, 1.0, "high"), tasks=("train",)),
    Param("search_sample_size", "20000",
          "model search: with more modelled customers than this, the candidates are fitted and measured on a "
          "seeded sample of about this many (the same customers from one run to the next), and the champion "
          "segments everyone (0: always every customer)", _parse_int, tasks=("train",)),
    Param("silhouette_sample_size", "2000",
          "customers sampled for the Euclidean silhouette reported next to the exact squared one", _parse_int,
          tasks=("train",)),
    Param("experiment_name", "customer_segmentation",
          "MLflow experiment (a workspace path such as /Shared/customer_segmentation on Databricks)",
          tasks=MODEL_TASKS, job_default="${var.experiment_path}"),
    Param("model_name", "customer_segmentation",
          "registered model name (catalog.schema.model in Unity Catalog)", _parse_model_name, tasks=MODEL_TASKS,
          job_default="${var.model_name}"),
    Param("currency", "GBP", "currency of the prices, shown in plots and the report", tasks=MODEL_TASKS),
    Param("clv_horizon_days", "365", "lifetime value: days ahead the predicted value covers", _parse_int,
          tasks=("lifetime_value",)),
    Param("clv_annual_discount_rate", "0.1",
          "lifetime value: yearly rate future purchases are discounted at (0 <= rate < 1)", _parse_fraction,
          tasks=("lifetime_value",)),
    Param("clv_margin", "1.0", "lifetime value: share of revenue that is value (1 = revenue, 0.3 = a 30% margin)",
          _number(0.0, 1.0, "high"), tasks=("lifetime_value",)),
    Param("clv_holdout_days", "90",
          "lifetime value: days at the end of the history the model is validated on (refitted before them)",
          _parse_int, tasks=("lifetime_value",)),
    Param("clv_model_name", "customer_lifetime_value",
          "registered lifetime-value model (catalog.schema.model in Unity Catalog)", _parse_model_name,
          tasks=("lifetime_value",), job_default="${var.clv_model_name}"),
    Param("max_abs_quantity", "1000000",
          "order lines with a larger absolute quantity are quarantined as absurd", _parse_positive,
          tasks=("silver",)),
    Param("max_unit_price", "1000000",
          "order lines with a larger unit price are quarantined as absurd", _parse_positive, tasks=("silver",)),
    Param("model_staging_path", "",
          "folder Spark writes models through before MLflow logs them (default: <state_root>/mlflow/staging; "
          "a /Volumes path on Databricks)", tasks=MODEL_TASKS, job_default="${var.model_staging_path}"),
    Param("run_id", "", "identifier of this job run, recorded with what it writes (default: generated)",
          job_default="{{job.run_id}}"),
)
PARAMS_BY_NAME = {param.name: param for param in PARAMS}


def task_parameters(task: str) -> tuple[str, ...]:
    """The parameters `task` reads, in registry order (its notebook's widgets, the job's parameters)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    return tuple(p.name for p in PARAMS if task in p.tasks and not p.local)


# What a kept line's quantity and amount can be, from silver.orders' column types.
QUANTITY_TYPE, AMOUNT_TYPE = (table("orders").column(name).type for name in ("quantity", "line_amount"))
MAX_QUANTITY = {"int": 2**31 - 1, "bigint": 2**63 - 1}[QUANTITY_TYPE.simpleString()]
MAX_LINE_AMOUNT = 10 ** (AMOUNT_TYPE.precision - AMOUNT_TYPE.scale)


def _validate(settings) -> None:
    for name in ("catalog", "bronze_schema", "silver_schema", "gold_schema"):
        check_identifier(name, getattr(settings, name))
    if settings.k_min < 2:
        raise ConfigError("k_min", f"{settings.k_min} is below 2; a segmentation needs at least 2 segments")
    if settings.k_max < settings.k_min:
        raise ConfigError("k_max", f"{settings.k_max} is below k_min={settings.k_min}: the k range is empty")
    if settings.k_max > 50:
        raise ConfigError("k_max", f"{settings.k_max} is above 50 segments, more than marketing can act on")
    if not settings.landing_path:
        raise ConfigError("landing_path", "is empty")
    if not settings.features:
        raise ConfigError("features", "is empty")
    if not 1 <= settings.kmeans_starts <= 50:
        raise ConfigError("kmeans_starts", f"{settings.kmeans_starts} is outside 1-50")
    if settings.search_sample_size and settings.search_sample_size < 100:
        raise ConfigError("search_sample_size", f"{settings.search_sample_size} is below 100 customers "
                                                 "(0 searches on every customer)")
    if settings.silhouette_sample_size < 10:
        raise ConfigError("silhouette_sample_size", f"{settings.silhouette_sample_size} is below 10")
    if not 1 <= settings.clv_horizon_days <= 3650:
        raise ConfigError("clv_horizon_days", f"{settings.clv_horizon_days} is outside 1-3650 days")
    if settings.clv_holdout_days < 1:
        raise ConfigError("clv_holdout_days", f"{settings.clv_holdout_days} must be at least 1 day")
    # The limits bound what a kept line's columns must hold (line_amount narrow enough for Spark to
    # keep in a long: a wider decimal is a BigDecimal per line in every read and write). A unit
    # price computed from an amount is rounded, hence the extra 0.0001.
    if settings.max_abs_quantity > MAX_QUANTITY:
        raise ConfigError("max_abs_quantity", f"{settings.max_abs_quantity:,.0f} is above {MAX_QUANTITY:,}, the "
                                              f"largest quantity silver.orders holds ({QUANTITY_TYPE.simpleString()})")
    if (settings.max_unit_price + 0.0001) * settings.max_abs_quantity >= MAX_LINE_AMOUNT:
        raise ConfigError("max_unit_price", f"{settings.max_unit_price:,.10g} x max_abs_quantity "
                                            f"{settings.max_abs_quantity:,.10g} reaches {MAX_LINE_AMOUNT:,}, beyond "
                                            f"the line amounts silver.orders holds ({AMOUNT_TYPE.simpleString()})")


class _SettingsMethods:
    """What Settings derives from its fields (the fields themselves come from PARAMS)."""

    def __post_init__(self) -> None:
        _validate(self)
        schema_of_layer = {"bronze": self.bronze_schema, "silver": self.silver_schema, "gold": self.gold_schema}
        object.__setattr__(self, "tables", TableNames(self.catalog, schema_of_layer))

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

    def _values(self) -> dict[str, object]:
        return {p.name: object.__getattribute__(self, p.name) for p in PARAMS}

    def replace(self, **changes) -> "Settings":
        return Settings(**{**self._values(), **changes})

    def to_params(self) -> dict[str, str]:
        """The settings as text parameters (inverse of from_params), e.g. for MLflow or a subprocess."""
        out = {}
        for name, value in self._values().items():
            if isinstance(value, tuple):
                value = ",".join(value)
            elif value is None:
                value = "auto"
            out[name] = str(value)
        return out

    def reading_as(self, task: str) -> "Settings":
        """These settings as `task` may read them: a read of a setting the registry does not list for
        the task raises, so a local run finds what the task's notebook would not receive."""
        allowed = frozenset(task_parameters(task) + tuple(p.name for p in PARAMS if p.local))
        view = object.__new__(_TaskSettings)
        object.__getattribute__(view, "__dict__").update(object.__getattribute__(self, "__dict__"))
        object.__setattr__(view, "_reading_as", (task, allowed))
        return view

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


def _default(param: Param):
    value = param.parse(param.name, param.default)
    return field(default_factory=lambda: value) if isinstance(value, (list, dict)) else field(default=value)


Settings = dataclasses.make_dataclass(
    "Settings",
    [(p.name, object, _default(p)) for p in PARAMS] + [("tables", TableNames, field(init=False, repr=False,
                                                                                       compare=False))],
    bases=(_SettingsMethods,), frozen=True)
Settings.__module__ = __name__
Settings.__doc__ = "Every setting of a run, one field per parameter of PARAMS, parsed and validated."


class _TaskSettings(Settings):
    """Settings as one task reads them (see `Settings.reading_as`)."""

    def __getattribute__(self, name: str):
        if name in PARAMS_BY_NAME:
            task, allowed = object.__getattribute__(self, "_reading_as")
            if name not in allowed:
                raise PipelineError(f"task {task!r} reads setting {name!r}, which the parameter registry does not "
                                    f"list for it: its notebook on Databricks would not receive it "
                                    f"(add {task!r} to the tasks of {name!r} in core/settings.py)")
        return object.__getattribute__(self, name)

    def __repr__(self) -> str:
        task, _ = object.__getattribute__(self, "_reading_as")
        return f"Settings(reading as {task!r}, {self._values()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SettingsMethods) and self._values() == other._values()

    __hash__ = None

    def replace(self, **changes) -> "Settings":
        task, _ = object.__getattribute__(self, "_reading_as")
        return Settings(**{**self._values(), **changes}).reading_as(task)


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def is_cloud_uri(path: str) -> bool:
    """Whether `path` names cloud storage (s3://, abfss://, dbfs:, ...) rather than a local folder."""
    return "://" in path or path.startswith("dbfs:")
