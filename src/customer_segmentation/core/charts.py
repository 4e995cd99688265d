"""Shared drawing: matplotlib without a display, figures drawn while their data is queried, units.

Every input of a figure is already aggregated (per candidate, per segment, or binned counts): no
customer-level row ever reaches a plot.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib

from .console import whole

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FEATURE_UNITS = {
    "recency_days": "days", "tenure_days": "days", "avg_days_between_orders": "days", "frequency": "orders",
    "distinct_products": "products", "return_rate": "share", "monetary": "currency", "gross_revenue": "currency",
    "returns_value": "currency", "avg_order_value": "currency",
}
COLOURS = plt.get_cmap("tab10")


def draw_as_ready(figures: list[tuple[Callable[[], Any], Callable[[Any], Path | None]]]) -> list[Path | None]:
    """Each figure's (query, drawing): the queries run a few at a time while this thread draws, in
    order, each figure whose data is back. A query is mostly Spark's planning and scheduling, a
    drawing Python's; matplotlib stays in one thread."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [(pool.submit(query), draw) for query, draw in figures]
        return [draw(data.result()) for data, draw in pending]


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def unit(feature: str, currency: str) -> str:
    kind = FEATURE_UNITS.get(feature, "")
    return currency if kind == "currency" else kind


def figure_text(feature: str, value: float) -> str:
    """A feature's value as a figure writes it: days, orders and products (counted, so whole or a
    half in a median) and anything from 10 up as whole numbers, as the segments' descriptions and the
    views state them; smaller values with two decimals."""
    return whole(value) if FEATURE_UNITS.get(feature) in ("days", "orders", "products") or abs(value) >= 10 \
        else f"{value:.2f}"
