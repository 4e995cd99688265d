"""What the product prints for people: one place, so tests and notebooks can capture it."""

from __future__ import annotations

import sys
from decimal import ROUND_HALF_UP, Decimal


def say(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


def whole(value: float) -> str:
    """`value` as a whole number with thousands separators, a half rounded away from zero as SQL's
    `round` does (Python's rounds it to even): a median of 30.5 days reads 31 in a segment's
    description, on the report and in the views alike."""
    return f"{Decimal(repr(float(value))).to_integral_value(ROUND_HALF_UP):,}"


def counted(value: float, noun: str) -> str:
    """`value` of `noun` as `whole` writes it, the noun singular for 1: "1 order", "3 orders"."""
    number = whole(value)
    return f"{number} {noun}{'' if number == '1' else 's'}"


def format_table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) and rows
               for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e-3 and value else f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)
