"""How the chosen customer features become one vector per customer (fixed at training time, part
of the registered model), and which of them are kept."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.ml import Pipeline
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.stat import Correlation
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..core.delta import sql_string
from ..core.tables import customer_features

ONE_HOT_WEIGHT = math.sqrt(0.5)
CATEGORICAL_FEATURES = customer_features("categorical")


@dataclass(frozen=True)
class FeaturePlan:
    """How the chosen feature columns become one vector, fixed at training time.

    Numeric features: signed log1p (tames skew, safe for zero and negative values), then
    standardised. Nullable ones (age, income, education level) take the training median where
    unknown, plus an `unknown` indicator. Categorical ones are one-hot encoded, each indicator
    weighted 1/sqrt(2) so that two different categories are as far apart as one standard deviation.
    """

    numeric: tuple[str, ...]
    medians: tuple[tuple[str, float], ...] = ()          # nullable numeric feature -> median
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()  # categorical feature -> observed values

    @property
    def features(self) -> list[str]:
        return list(self.numeric) + [name for name, _ in self.categories]

    @property
    def numeric_columns(self) -> list[str]:
        return [f"{f}__log" for f in self.numeric] + [f"{f}__unknown" for f, _ in self.medians]

    @property
    def indicator_columns(self) -> list[str]:
        return [f"{f}__{i}" for f, values in self.categories for i in range(len(values))]

    @property
    def dimensions(self) -> int:
        return len(self.numeric_columns) + len(self.indicator_columns)


def plan_features(df: DataFrame, features: list[str]) -> FeaturePlan:
    """The plan for `features` of `df`: medians of nullable numeric ones, values of categorical ones."""
    categorical = [f for f in features if f in CATEGORICAL_FEATURES]
    numeric = [f for f in features if f not in categorical]
    # One pass for the null counts and the category values (few per feature); medians only if needed.
    seen = df.agg(*[F.count_if(F.col(f).isNull()).alias(f"nulls:{f}") for f in numeric],
                  *[F.collect_set(f).alias(f"values:{f}") for f in categorical]).first().asDict()
    nullable = [f for f in numeric if seen[f"nulls:{f}"]]
    medians = (df.agg(*[F.percentile(f, 0.5).alias(f) for f in nullable]).first().asDict() if nullable else {})
    values = {f: tuple(sorted(seen[f"values:{f}"])) for f in categorical}
    return FeaturePlan(tuple(numeric), tuple((f, float(medians[f] or 0.0)) for f in nullable),
                       tuple((f, values[f]) for f in categorical))


def preparation_statement(plan: FeaturePlan) -> str:
    # Feature names come from the validated settings; category values are SQL-escaped literals.
    medians = dict(plan.medians)
    parts = []
    for f in plan.numeric:
        value = f"coalesce(`{f}`, {medians[f]!r})" if f in medians else f"`{f}`"
        parts.append(f"signum({value}) * ln(1 + abs({value})) AS `{f}__log`")
    parts += [f"CAST(`{f}` IS NULL AS DOUBLE) AS `{f}__unknown`" for f, _ in plan.medians]
    parts += [f"CAST(`{f}` = {sql_string(v)} AS DOUBLE) * {ONE_HOT_WEIGHT!r} AS `{f}__{i}`"
              for f, values in plan.categories for i, v in enumerate(values)]
    return f"SELECT *, {', '.join(parts)} FROM __THIS__"


def preparation_pipeline(plan: FeaturePlan) -> Pipeline:
    """Transform, assemble and standardise the numeric part, then append the one-hot indicators."""
    stages = [SQLTransformer(statement=preparation_statement(plan)),
              VectorAssembler(inputCols=plan.numeric_columns, outputCol="raw_features"),
              StandardScaler(inputCol="raw_features", outputCol="scaled_features", withMean=True, withStd=True)]
    stages.append(VectorAssembler(inputCols=["scaled_features", *plan.indicator_columns], outputCol="features")
                  if plan.indicator_columns else
                  SQLTransformer(statement="SELECT *, scaled_features AS features FROM __THIS__"))
    return Pipeline(stages=stages)


def select_features(df: DataFrame, features: list[str], max_correlation: float) -> tuple[list[str], dict[str, str]]:
    """Drop numeric features nearly duplicating an earlier one (|Pearson r| of the log features above the
    limit), and features the table does not have (their optional source is not in use)."""
    dropped = {f: "not in the feature table (its optional source is not in use)" for f in features
               if f not in df.columns}
    features = [f for f in features if f in df.columns]
    numeric = [f for f in features if f not in CATEGORICAL_FEATURES]
    if max_correlation >= 1.0 or len(numeric) < 2 or df.limit(3).count() < 3:
        return features, dropped  # nothing to compare, or too few customers for a correlation
    plan = plan_features(df, numeric)
    assembled = Pipeline(stages=preparation_pipeline(plan).getStages()[:2]).fit(df).transform(df)
    matrix = Correlation.corr(assembled, "raw_features").first()[0].toArray()
    kept: list[str] = []
    for i, feature in enumerate(numeric):
        twins = [(numeric[j], matrix[i, j]) for j in range(i) if numeric[j] in kept
                 and not math.isnan(matrix[i, j]) and abs(matrix[i, j]) > max_correlation]
        if twins:
            dropped[feature] = f"correlation {twins[0][1]:.3f} with {twins[0][0]} (limit {max_correlation})"
        else:
            kept.append(feature)
    return [f for f in features if f in kept or f in CATEGORICAL_FEATURES], dropped
