"""Synthetic landing data shaped exactly like the UCI Online Retail by-day files.

One CSV per trading day with the same columns and formats (`InvoiceDate` as
`yyyy-MM-dd HH:mm:ss`, `CustomerID` as `17850.0` or empty, quoting only where needed), the
same traps (guest lines without a customer, exact duplicate lines, `C` cancellations with
negative quantities, zero and negative prices, stock adjustments, non-product codes such as
POST, DOT, M, D, BANK CHARGES, AMAZONFEE and gift vouchers, customers whose net spend is zero
or negative) and planted structure to find: five customer behaviours with seasonality.

Deterministic for a seed: the customer and order plan comes from one seeded generator, and each
day's lines from a generator seeded by (seed, day), so the output is byte-identical for a seed.
Memory holds the order plan (a few numbers per order), never all lines: days are written one
at a time, which lets the generator scale from a few thousand lines to tens of millions.

With a `PurchaseProcess`, every customer instead buys as the lifetime-value models assume
(BG/NBD repeat buying, Gamma-Gamma spend) with known parameters, so that their fit can be checked
against the truth.

Written next to the landing folder (never inside it, so it is not ingested):
`planted_segments.csv` (customer -> planted behaviour), `manifest.json` (counts of lines and
of every trap) and, with a purchase process, `planted_purchases.csv` (customer, day, amount).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
FIRST_DAY = dt.date(2010, 12, 1)
DAYS = 374  # 2010-12-01 .. 2011-12-09, the span of the real data
FIRST_INVOICE_NO = 536365
FIRST_CUSTOMER_ID = 12346

CATEGORIES = (
    "Home Decor", "Kitchen & Dining", "Gifts & Party", "Stationery",
    "Bags & Accessories", "Toys & Games", "Garden & Outdoor", "Christmas",
)


@dataclass(frozen=True)
class Behaviour:
    """A planted customer behaviour: how many orders, when, how large."""

    name: str
    share: float
    orders: tuple[int, int]            # inclusive range of the number of orders
    first_day: tuple[float, float]     # window start, as fractions of the period
    last_day: tuple[float, float]      # window end, as fractions of the period
    lines_per_order: float             # mean distinct lines on an order
    quantities: tuple[int, ...]        # typical quantities per line
    cancel_rate: float                 # share of orders later cancelled (partly or fully)
    foreign_share: float               # share of customers outside the United Kingdom
    category_weights: tuple[float, ...]


BEHAVIOURS = (
    Behaviour("loyal_high_spender", 0.16, (12, 40), (0.0, 0.25), (0.95, 1.0), 20, (2, 3, 4, 6, 8, 12),
              0.03, 0.10, (4, 3, 2, 1, 1, 1, 1, 2)),
    Behaviour("new_customer", 0.16, (1, 3), (0.84, 0.97), (0.97, 1.0), 10, (1, 2, 3, 4, 6),
              0.02, 0.08, (1, 1, 4, 2, 2, 2, 1, 2)),
    Behaviour("one_time_buyer", 0.30, (1, 1), (0.0, 0.70), (0.0, 0.70), 8, (1, 2, 3, 4, 6),
              0.04, 0.08, (1, 1, 3, 2, 1, 3, 1, 2)),
    Behaviour("lapsed", 0.26, (3, 9), (0.0, 0.15), (0.25, 0.50), 12, (1, 2, 3, 4, 6, 12),
              0.03, 0.10, (2, 2, 2, 2, 2, 1, 2, 1)),
    Behaviour("wholesaler", 0.12, (8, 24), (0.0, 0.15), (0.92, 1.0), 40, (48, 72, 96, 144, 200, 288, 480),
              0.06, 0.40, (2, 5, 3, 1, 1, 1, 1, 1)),
)
PROCESS_BEHAVIOUR = -2  # behaviour_of_customer of a customer drawn from a PurchaseProcess
PROCESS_GUEST_INVOICE_SHARE = 0.05  # a few guest orders beside them: their lines must change nothing


@dataclass(frozen=True)
class PurchaseProcess:
    """Buying exactly as BG/NBD and Gamma-Gamma assume (Fader, Hardie & Lee 2005), time in weeks.

    Each customer's purchase rate is lambda ~ Gamma(shape r, rate alpha); after every repeat
    purchase they drop out with probability p_drop ~ Beta(a, b); purchases follow a Poisson process
    while alive. Each purchase is worth z ~ Gamma(shape p, rate nu) with nu ~ Gamma(shape q, rate
    gamma). First purchases fall uniformly in the first `acquisition_days`. The defaults are the
    estimates the papers report for CDNOW.
    """

    r: float = 0.243
    alpha: float = 4.414
    a: float = 0.793
    b: float = 2.426
    p: float = 6.25
    q: float = 3.74
    gamma: float = 15.44
    acquisition_days: int = 182

    def parameters(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("r", "alpha", "a", "b", "p", "q", "gamma")}


def draw_purchases(rng: np.random.Generator, process: PurchaseProcess, customers: int,
                   days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer index, day, amount) of every purchase before `days`, one per customer and day
    (purchases on the same day are one transaction, as the models count them)."""
    rate = rng.gamma(process.r, 1 / process.alpha, customers) / 7           # per day
    drop = rng.beta(process.a, process.b, customers)
    spend_rate = rng.gamma(process.q, 1 / process.gamma, customers)
    time = rng.uniform(0, process.acquisition_days, customers)
    who, when = [np.arange(customers)], [time.copy()]
    alive = np.arange(customers)
    while len(alive):
        # The next purchase of everyone still buying; those past the end leave the loop.
        time[alive] += rng.exponential(1 / np.maximum(rate[alive], 1e-300))
        alive = alive[time[alive] < days]
        who.append(alive)
        when.append(time[alive].copy())
        # A drop-out can follow a repeat purchase only (BG/NBD: never the first).
        alive = alive[rng.random(len(alive)) >= drop[alive]]
    customer = np.concatenate(who)
    day = np.floor(np.concatenate(when)).astype(np.int64)
    amount = rng.gamma(process.p, 1 / spend_rate[customer])
    keys, position = np.unique(customer * days + day, return_inverse=True)
    total = np.bincount(position, weights=amount)
    return keys // days, keys % days, np.round(np.maximum(total, 0.01), 2)


COUNTRIES = ("Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium", "Switzerland", "Portugal",
             "Australia", "Norway", "Italy", "Sweden", "Denmark", "Japan")
GUEST_INVOICE_SHARE = 0.45       # guest checkouts (no customer ID) per customer order
RETURNS_ONLY_SHARE = 0.006       # customers whose only activity is a return of older goods
FULL_CANCEL_SHARE = 0.05         # one-time buyers who cancel their whole order (net spend zero)
DUPLICATE_LINE_RATE = 0.01       # lines written twice in a row (exact duplicates)
ZERO_PRICE_LINE_RATE = 0.002     # free items on a sale (UnitPrice 0)

WORDS_ADJ = ("WHITE", "RED", "PINK", "BLUE", "VINTAGE", "RETRO", "GLASS", "WOODEN", "METAL", "CERAMIC",
             "PAPER", "KNITTED", "HEART", "STAR", "FLORAL", "SPOTTY", "REGENCY", "ANTIQUE", "JUMBO", "MINI")
WORDS_ITEM = {
    "Home Decor": ("T-LIGHT HOLDER", "LANTERN", "FRAME", "CUSHION COVER", "DOORMAT", "WALL CLOCK", "SIGN"),
    "Kitchen & Dining": ("TEACUP AND SAUCER", "CAKE STAND", "LUNCH BOX", "JAM JAR", "MUG", "TEA TOWELS"),
    "Gifts & Party": ("GIFT BAG", "PARTY BUNTING", "BIRTHDAY CARD", "WRAP", "CANDLE SET", "PAPER CHAIN KIT"),
    "Stationery": ("NOTEBOOK", "PENCILS", "STICKERS", "ENVELOPES", "MEMO BOARD"),
    "Bags & Accessories": ("JUMBO BAG", "SHOPPER BAG", "PURSE", "HAIR CLIP", "CHARLOTTE BAG"),
    "Toys & Games": ("SKIPPING ROPE", "DOLLY GIRL SET", "SPACEBOY KIT", "PLAYING CARDS", "BUILDING BLOCKS"),
    "Garden & Outdoor": ("WATERING CAN", "BIRD TABLE", "PLANT POT", "GARDEN MARKER", "HOT WATER BOTTLE"),
    "Christmas": ("CHRISTMAS DECORATION", "ADVENT CALENDAR", "BAUBLE", "STOCKING", "TREE TOPPER"),
}
ADJUSTMENT_NOTES = ("damaged", "check", "?", "thrown away", "Unsaleable, destroyed.", "damages", "")


@dataclass(frozen=True)
class Catalogue:
    codes: np.ndarray        # stock codes (str)
    descriptions: np.ndarray
    prices: np.ndarray       # float, 2 decimals
    categories: np.ndarray   # index into CATEGORIES
    unit_costs: np.ndarray
    category_start: np.ndarray
    category_size: np.ndarray


def build_catalogue(rng: np.random.Generator, per_category: int = 60) -> Catalogue:
    codes, descriptions, prices, categories = [], [], [], []
    used_codes: set[str] = set()
    for category_index, category in enumerate(CATEGORIES):
        for _ in range(per_category):
            while True:
                code = str(rng.integers(10000, 90000))
                if rng.random() < 0.25:
                    code += "ABCDEFGLPS"[rng.integers(0, 10)]
                if code not in used_codes:
                    used_codes.add(code)
                    break
            description = f"{rng.choice(WORDS_ADJ)} {rng.choice(WORDS_ITEM[category])}"
            roll = rng.random()
            if roll < 0.05:  # embedded comma: the field must be quoted
                description = f"SET {rng.integers(2, 7)} {description}, "
            elif roll < 0.07:  # embedded double quote: quoted and doubled
                description = f'{description} {rng.integers(5, 12)}" SIZE '
            codes.append(code)
            descriptions.append(description)
            prices.append(round(float(np.exp(rng.normal(0.9, 0.7))), 2) or 0.19)
            categories.append(category_index)
    categories_array = np.array(categories)
    prices_array = np.maximum(np.array(prices), 0.19)
    return Catalogue(
        codes=np.array(codes, dtype=object),
        descriptions=np.array(descriptions, dtype=object),
        prices=prices_array,
        categories=categories_array,
        unit_costs=np.round(prices_array * rng.uniform(0.35, 0.7, len(prices_array)), 2),
        category_start=np.array([np.argmax(categories_array == i) for i in range(len(CATEGORIES))]),
        category_size=np.bincount(categories_array, minlength=len(CATEGORIES)),
    )


def _daily_weights(days: int) -> np.ndarray:
    """Order intensity per day: busier towards Christmas, no trading on Saturdays."""
    month_factor = {1: 0.75, 2: 0.75, 3: 0.95, 4: 0.85, 5: 1.0, 6: 0.95, 7: 0.95, 8: 0.95, 9: 1.35,
                    10: 1.5, 11: 1.9, 12: 1.1}
    weekday_factor = (1.0, 1.05, 1.0, 1.1, 0.85, 0.0, 0.65)  # Monday .. Sunday
    weights = np.empty(days)
    for offset in range(days):
        day = FIRST_DAY + dt.timedelta(days=offset)
        weights[offset] = month_factor[day.month] * weekday_factor[day.weekday()]
    return weights


def _expected_lines_per_customer() -> float:
    orders = sum(b.share * sum(b.orders) / 2 for b in BEHAVIOURS)
    customer_lines = sum(
        b.share * (sum(b.orders) / 2) * b.lines_per_order * (1 + b.cancel_rate * 0.6) for b in BEHAVIOURS
    )
    guest_lines = orders * GUEST_INVOICE_SHARE * 9.5  # guest orders are retail-sized, plus postage
    return (customer_lines + guest_lines) * (1 + DUPLICATE_LINE_RATE)


def customers_for_lines(lines: int) -> int:
    return max(20, round(lines / _expected_lines_per_customer()))


@dataclass
class Plan:
    """Who orders when: one entry per invoice to write (orders, guest orders, returns)."""

    customer_ids: np.ndarray       # per customer
    behaviour_of_customer: np.ndarray  # index into BEHAVIOURS, -1 for returns-only customers
    country_of_customer: np.ndarray    # str
    event_seconds: np.ndarray      # per invoice: seconds since FIRST_DAY 00:00
    event_customer: np.ndarray     # per invoice: customer index, -1 for a guest
    event_kind: np.ndarray         # 0 order, 1 return of older goods
    event_amount: np.ndarray | None = None  # per invoice: value of a purchase drawn from a process


def _sample_days(rng, cdf, low_day, high_day):
    low_cdf = np.where(low_day > 0, cdf[np.maximum(low_day - 1, 0)], 0.0)
    high_cdf = cdf[high_day]
    u = low_cdf + rng.random(len(low_day)) * (high_cdf - low_cdf)
    return np.minimum(np.searchsorted(cdf, u, side="left"), len(cdf) - 1)


def build_plan(rng: np.random.Generator, customers: int, days: int) -> Plan:
    weights = _daily_weights(days)
    cdf = np.cumsum(weights) / weights.sum()
    shares = np.array([b.share for b in BEHAVIOURS])
    behaviour = rng.choice(len(BEHAVIOURS), size=customers, p=shares / shares.sum())
    returns_only = rng.random(customers) < RETURNS_ONLY_SHARE
    behaviour = np.where(returns_only, -1, behaviour)
    order_customer, order_low, order_high = [], [], []
    for index, b in enumerate(BEHAVIOURS):
        members = np.flatnonzero(behaviour == index)
        counts = rng.integers(b.orders[0], b.orders[1] + 1, size=len(members))
        start = (rng.uniform(*b.first_day, size=len(members)) * (days - 1)).astype(int)
        end = np.maximum(start, (rng.uniform(*b.last_day, size=len(members)) * (days - 1)).astype(int))
        order_customer.append(np.repeat(members, counts))
        order_low.append(np.repeat(start, counts))
        order_high.append(np.repeat(end, counts))
        # The first and last orders sit on the window's edges so recency and tenure are as planned.
        first_of_customer = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else np.array([], int)
        last_of_customer = np.cumsum(counts) - 1
        order_high[-1][first_of_customer] = order_low[-1][first_of_customer]
        order_low[-1][last_of_customer] = order_high[-1][last_of_customer]
    order_customer = np.concatenate(order_customer)
    order_day = _sample_days(rng, cdf, np.concatenate(order_low), np.concatenate(order_high))
    # Returns of goods bought before the data starts: one return each, any time.
    returners = np.flatnonzero(behaviour == -1)
    return_day = _sample_days(rng, cdf, np.zeros(len(returners), int), np.full(len(returners), days - 1))
    guests = rng.binomial(len(order_customer), GUEST_INVOICE_SHARE)
    guest_day = _sample_days(rng, cdf, np.zeros(guests, int), np.full(guests, days - 1))
    event_day = np.concatenate([order_day, return_day, guest_day])
    event_customer = np.concatenate([order_customer, returners, np.full(guests, -1)])
    event_kind = np.concatenate([np.zeros(len(order_day), int), np.ones(len(returners), int), np.zeros(guests, int)])
    minute_of_day = rng.integers(7 * 60 + 30, 19 * 60, size=len(event_day))
    event_seconds = event_day.astype(np.int64) * 86400 + minute_of_day * 60
    order = np.lexsort((event_customer, event_seconds))
    country = np.where(
        rng.random(customers) < np.array([BEHAVIOURS[b].foreign_share if b >= 0 else 0.1 for b in behaviour]),
        rng.choice(np.array(COUNTRIES, dtype=object), size=customers),
        "United Kingdom",
    )
    ids = FIRST_CUSTOMER_ID + rng.permutation(customers * 3)[:customers]
    return Plan(ids, behaviour, country, event_seconds[order], event_customer[order], event_kind[order])


def build_process_plan(rng: np.random.Generator, customers: int, days: int, process: PurchaseProcess) -> Plan:
    """Every customer buys as `process` says; guests as usual; no returns-only customers."""
    weights = _daily_weights(days)
    cdf = np.cumsum(weights) / weights.sum()
    customer, day, amount = draw_purchases(rng, process, customers, days)
    guests = rng.binomial(len(customer), PROCESS_GUEST_INVOICE_SHARE)
    guest_day = _sample_days(rng, cdf, np.zeros(guests, int), np.full(guests, days - 1))
    event_day = np.concatenate([day, guest_day])
    event_customer = np.concatenate([customer, np.full(guests, -1)])
    event_amount = np.concatenate([amount, np.full(guests, np.nan)])
    event_seconds = event_day * 86400 + rng.integers(7 * 60 + 30, 19 * 60, size=len(event_day)) * 60
    order = np.lexsort((event_customer, event_seconds))
    country = np.where(rng.random(customers) < 0.1, rng.choice(np.array(COUNTRIES, dtype=object), size=customers),
                       "United Kingdom")
    ids = FIRST_CUSTOMER_ID + rng.permutation(customers * 3)[:customers]
    return Plan(ids, np.full(customers, PROCESS_BEHAVIOUR), country, event_seconds[order], event_customer[order],
                np.zeros(len(order), int), event_amount[order])


class TrapCounter:
    def __init__(self):
        self.counts: dict[str, int] = {}

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(amount)


def _format_price(value: float) -> str:
    return repr(round(float(value), 3))


@dataclass
class _Invoice:
    seconds: int
    customer: int          # -1 guest
    rows: list             # [code, description, quantity, price]
    cancellation: bool = False
    adjustment: bool = False


class _DayWriter:
    """Generates and writes the lines of one day."""

    def __init__(self, plan: Plan, catalogue: Catalogue, seed: int, traps: TrapCounter):
        self.plan, self.catalogue, self.seed, self.traps = plan, catalogue, seed, traps
        self.pending_cancellations: dict[int, list[_Invoice]] = {}

    def _order_rows(self, rng, behaviour: Behaviour | None, foreign: bool, guest: bool) -> list:
        cat = self.catalogue
        lines_mean = behaviour.lines_per_order if behaviour else 9
        n_lines = 1 + rng.poisson(lines_mean - 1)
        weights = np.array(behaviour.category_weights if behaviour else (1,) * len(CATEGORIES), float)
        category = rng.choice(len(CATEGORIES), size=n_lines, p=weights / weights.sum())
        product = cat.category_start[category] + rng.integers(0, cat.category_size[category])
        quantities = rng.choice(behaviour.quantities if behaviour else (1, 2, 3, 4, 6), size=n_lines)
        rows = [[cat.codes[p], cat.descriptions[p], int(q), float(cat.prices[p])] for p, q in zip(product, quantities)]
        for row in rows:
            if rng.random() < ZERO_PRICE_LINE_RATE:
                row[3] = 0.0
                self.traps.add("zero_price_sale_lines")
        if foreign and rng.random() < 0.6:
            rows.append(["POST", "POSTAGE", int(rng.integers(1, 4)), float(rng.choice((18.0, 28.0, 40.0)))])
        if guest and rng.random() < 0.5:
            rows.append(["DOT", "DOTCOM POSTAGE", 1, round(float(rng.uniform(5, 60)), 2)])
        if guest and rng.random() < 0.01:
            rows.append(["gift_0001_20", "Dotcomgiftshop Gift Voucher £20.00", 1, 17.02])
        if rng.random() < 0.005:
            rows.append(["M", "Manual", 1, round(float(rng.uniform(0.5, 30)), 2)])
        if foreign and rng.random() < 0.02:
            rows.append(["C2", "CARRIAGE", 1, 50.0])
        if rng.random() < 0.002:
            rows.append(["BANK CHARGES", "Bank Charges", 1, 15.0])
        if rng.random() < 0.003:
            rows.append(["PADS", "PADS TO MATCH ALL CUSHIONS", 1, 0.001])
        return rows

    def _plan_cancellation(self, rng, invoice: _Invoice, full: bool, days: int) -> None:
        delay = int(rng.integers(3600, 12 * 86400))
        seconds = invoice.seconds + delay
        if seconds // 86400 >= days or (seconds % 86400) > 19 * 3600:
            seconds = invoice.seconds + 1800  # same day, half an hour later
        if (FIRST_DAY + dt.timedelta(days=int(seconds // 86400))).weekday() == 5:
            seconds += 86400  # no trading on Saturdays
            if seconds // 86400 >= days:
                seconds = invoice.seconds + 1800
        product_rows = [r for r in invoice.rows if r[3] > 0]
        if not product_rows:
            return
        if full:
            chosen = product_rows
        else:
            keep = rng.random(len(product_rows)) < 0.4
            keep[rng.integers(0, len(product_rows))] = True
            chosen = [r for r, k in zip(product_rows, keep) if k]
        rows = [[r[0], r[1], -int(r[2] if full else max(1, rng.integers(1, r[2] + 1))), r[3]] for r in chosen]
        if not full and rng.random() < 0.15:
            rows.append(["D", "Discount", -1, round(float(rng.uniform(5, 60)), 2)])
        cancellation = _Invoice(seconds, invoice.customer, rows, cancellation=True)
        self.pending_cancellations.setdefault(seconds // 86400, []).append(cancellation)

    def invoices_for_day(self, day: int, events: slice, days: int) -> list[_Invoice]:
        plan = self.plan
        rng = np.random.default_rng([self.seed, day])
        invoices = []
        amounts = plan.event_amount[events] if plan.event_amount is not None else np.full(events.stop - events.start,
                                                                                          np.nan)
        for seconds, customer, kind, amount in zip(plan.event_seconds[events], plan.event_customer[events],
                                                   plan.event_kind[events], amounts):
            guest = customer < 0
            behaviour_index = -1 if guest else plan.behaviour_of_customer[customer]
            foreign = (not guest) and plan.country_of_customer[customer] != "United Kingdom"
            if behaviour_index == PROCESS_BEHAVIOUR:  # one line worth exactly the drawn amount
                product = int(rng.integers(0, len(self.catalogue.codes)))
                rows = [[self.catalogue.codes[product], self.catalogue.descriptions[product], 1, float(amount)]]
                invoices.append(_Invoice(int(seconds), int(customer), rows))
                continue
            if kind == 1:  # a return of goods bought before the data starts: net spend below zero
                rows = self._order_rows(rng, None, foreign, guest=False)[:3]
                rows = [[r[0], r[1], -abs(int(r[2])), r[3] or 1.0] for r in rows]
                invoices.append(_Invoice(int(seconds), int(customer), rows, cancellation=True))
                self.traps.add("returns_only_customers")
                continue
            behaviour = BEHAVIOURS[behaviour_index] if behaviour_index >= 0 else None
            invoice = _Invoice(int(seconds), int(customer), self._order_rows(rng, behaviour, foreign, guest))
            invoices.append(invoice)
            if behaviour is not None:
                if behaviour.name == "one_time_buyer" and rng.random() < FULL_CANCEL_SHARE:
                    self._plan_cancellation(rng, invoice, full=True, days=days)
                    self.traps.add("fully_cancelled_orders")
                elif rng.random() < behaviour.cancel_rate:
                    self._plan_cancellation(rng, invoice, full=False, days=days)
        invoices.extend(self.pending_cancellations.pop(day, []))
        if invoices:
            # Stock adjustments: negative quantity, zero price, no customer, not a cancellation.
            for _ in range(rng.poisson(2)):
                p = int(rng.integers(0, len(self.catalogue.codes)))
                row = [self.catalogue.codes[p], str(rng.choice(ADJUSTMENT_NOTES)), -int(rng.integers(1, 100)), 0.0]
                invoices.append(_Invoice(int(day * 86400 + rng.integers(9 * 3600, 17 * 3600)), -1, [row],
                                         adjustment=True))
            if rng.random() < 0.08:
                invoices.append(_Invoice(int(day * 86400 + 15 * 3600), -1,
                                         [["AMAZONFEE", "AMAZON FEE", -1, round(float(rng.uniform(500, 9000)), 2)]],
                                         cancellation=True))
            if rng.random() < 0.02:  # bad-debt write-off: a negative unit price
                invoices.append(_Invoice(int(day * 86400 + 14 * 3600), -1,
                                         [["B", "Adjust bad debt", 1, -round(float(rng.uniform(100, 9000)), 2)]],
                                         adjustment=True))
        invoices.sort(key=lambda inv: (inv.seconds, inv.cancellation, inv.customer))
        return invoices


def _count_row_traps(traps: TrapCounter, row: list, invoice: _Invoice) -> None:
    code, price = row[0], row[3]
    if invoice.customer < 0:
        traps.add("missing_customer_lines")
    if invoice.cancellation:
        traps.add("cancellation_lines")
    if price <= 0:
        traps.add("non_positive_price_lines")
    if not code[:1].isdigit():
        traps.add("non_product_lines")
    if invoice.adjustment:
        traps.add("stock_adjustment_lines")


def generate(out_dir: str | Path, customers: int = 1000, seed: int = 42, days: int = DAYS,
             optional_sources: bool = False, process: PurchaseProcess | None = None) -> dict:
    """Write `<out_dir>/transactions/*.csv`, `planted_segments.csv` and `manifest.json`; with
    `optional_sources`, also `customers/`, `engagement/` and `products/` (see `write_optional_sources`);
    with a purchase `process`, every customer buys by it and `planted_purchases.csv` lists what they bought.

    Returns the manifest: lines written, files, customers and a count of every planted trap.
    """
    out = Path(out_dir)
    landing = out / "transactions"
    landing.mkdir(parents=True, exist_ok=True)
    for old in landing.glob("*.csv"):
        old.unlink()
    rng = np.random.default_rng(seed)
    catalogue = build_catalogue(rng)
    plan = build_plan(rng, customers, days) if process is None else build_process_plan(rng, customers, days, process)
    traps = TrapCounter()
    writer = _DayWriter(plan, catalogue, seed, traps)
    event_day = plan.event_seconds // 86400
    boundaries = np.searchsorted(event_day, np.arange(days + 1))
    invoice_no = FIRST_INVOICE_NO
    lines_written = files_written = 0
    active_customers: set[int] = set()
    for day in range(days):
        invoices = writer.invoices_for_day(day, slice(boundaries[day], boundaries[day + 1]), days)
        if not invoices:
            continue
        rng_day = np.random.default_rng([seed, day, 1])
        buffer = io.StringIO()
        csv_writer = csv.writer(buffer, lineterminator="\n")
        csv_writer.writerow(HEADER)
        date = FIRST_DAY + dt.timedelta(days=day)
        for invoice in invoices:
            number = ("C" if invoice.cancellation else "") + str(invoice_no)
            invoice_no += 1
            seconds_of_day = invoice.seconds % 86400
            stamp = f"{date.isoformat()} {seconds_of_day // 3600:02d}:{seconds_of_day % 3600 // 60:02d}:00"
            customer = ""
            country = "United Kingdom"
            if invoice.customer >= 0:
                customer = f"{plan.customer_ids[invoice.customer]}.0"
                country = plan.country_of_customer[invoice.customer]
                active_customers.add(invoice.customer)
            seen_lines: set[tuple] = set()
            for row in invoice.rows:
                line = [number, row[0], row[1], row[2], stamp, _format_price(row[3]), customer, country]
                copies = 2 if (not invoice.adjustment and rng_day.random() < DUPLICATE_LINE_RATE) else 1
                for _ in range(copies):
                    csv_writer.writerow(line)
                    _count_row_traps(traps, row, invoice)
                    # Exact duplicates: planted copies, and the same item drawn twice on an order.
                    traps.add("duplicate_lines", int(tuple(line) in seen_lines))
                    seen_lines.add(tuple(line))
                lines_written += copies
        (landing / f"{date.isoformat()}.csv").write_text(buffer.getvalue(), encoding="utf-8")
        files_written += 1
    behaviour_names = {**{i: b.name for i, b in enumerate(BEHAVIOURS)}, -1: "returns_only",
                       PROCESS_BEHAVIOUR: "purchase_process"}
    with open(out / "planted_segments.csv", "w", newline="", encoding="utf-8") as handle:
        planted = csv.writer(handle, lineterminator="\n")
        planted.writerow(["customer_id", "planted_behaviour"])
        for index in sorted(active_customers, key=lambda i: plan.customer_ids[i]):
            planted.writerow([str(plan.customer_ids[index]), behaviour_names[plan.behaviour_of_customer[index]]])
    if process is not None:
        bought = plan.event_customer >= 0
        with open(out / "planted_purchases.csv", "w", newline="", encoding="utf-8") as handle:
            planted = csv.writer(handle, lineterminator="\n")
            planted.writerow(["customer_id", "day", "amount"])
            for index, seconds, amount in zip(plan.event_customer[bought], plan.event_seconds[bought],
                                              plan.event_amount[bought]):
                day = FIRST_DAY + dt.timedelta(days=int(seconds // 86400))
                planted.writerow([str(plan.customer_ids[index]), day.isoformat(), _format_price(amount)])
    manifest = {
        "seed": seed,
        "customers": len(active_customers),
        "lines": lines_written,
        "files": files_written,
        "first_day": FIRST_DAY.isoformat(),
        "days": days,
        "traps": dict(sorted(traps.counts.items())),
        **({"purchase_process": process.parameters()} if process else {}),
        "landing_path": str(landing),
    }
    if optional_sources:
        manifest["optional_sources"] = write_optional_sources(out, plan, catalogue, seed, days)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


# --- Optional sources -------------------------------------------------------------------------
# Consistent with the planted behaviours, so that they carry signal: wholesalers are businesses
# (no age, income, gender or marital status), loyal high spenders open and click more emails and
# hold the top loyalty tiers, lapsed customers stopped engaging when they stopped buying.

CUSTOMER_HEADER = ["CustomerID", "Age", "Income", "Education", "LoyaltyTier", "Gender", "MaritalStatus", "Region"]
ENGAGEMENT_HEADER = ["CustomerID", "Month", "EmailsOpened", "EmailsClicked", "Sessions", "PageViews",
                     "SessionMinutes"]
PRODUCT_HEADER = ["StockCode", "Category", "UnitCost"]
EDUCATION = ("Secondary", "Vocational", "Bachelor", "Master", "Doctorate")
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
UK_REGIONS = ("London", "South East", "North West", "Midlands", "Scotland", "Wales", "South West")


@dataclass(frozen=True)
class Persona:
    age: tuple[int, int] | None        # None: a business, no personal attributes
    income: tuple[int, int] | None
    education_weights: tuple[float, ...]
    tier_weights: tuple[float, ...]
    opens_per_month: float
    click_rate: float
    sessions_per_month: float


PERSONAS = {
    "loyal_high_spender": Persona((38, 66), (55_000, 130_000), (1, 1, 3, 3, 1), (0, 1, 4, 4), 7.0, 0.45, 9.0),
    "new_customer": Persona((19, 34), (18_000, 45_000), (2, 2, 3, 1, 0.2), (6, 1, 0, 0), 4.0, 0.25, 7.0),
    "one_time_buyer": Persona((18, 75), (15_000, 60_000), (3, 2, 2, 1, 0.2), (8, 1, 0, 0), 0.4, 0.08, 0.6),
    "lapsed": Persona((30, 62), (25_000, 70_000), (2, 2, 2, 1, 0.3), (3, 5, 1, 0), 0.8, 0.10, 0.8),
    "wholesaler": Persona(None, None, (1, 1, 1, 1, 1), (0, 1, 5, 1), 1.5, 0.20, 3.0),
    "returns_only": Persona((25, 70), (15_000, 60_000), (2, 2, 2, 1, 0.2), (8, 1, 0, 0), 0.2, 0.05, 0.3),
}


def _pick(rng, options, weights):
    weights = np.array(weights, float)
    return options[rng.choice(len(options), p=weights / weights.sum())]


def write_optional_sources(out: Path, plan: Plan, catalogue: Catalogue, seed: int, days: int) -> dict:
    """Write `customers/customers.csv`, `engagement/<month>.csv` and `products/products.csv`.

    Returns counts of rows and of the traps planted in them (blank loyalty tiers, an age that is
    not a number, an impossible age, a negative session count, a line with a field missing, exact
    duplicate lines, products without a cost).
    """
    rng = np.random.default_rng([seed, 7])  # its own stream: transactions stay byte-identical
    traps = TrapCounter()
    folders = {name: out / name for name in ("customers", "engagement", "products")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.csv"):
            old.unlink()
    names = [b.name for b in BEHAVIOURS] + ["returns_only"]

    rows = []
    for index, customer_id in enumerate(plan.customer_ids):
        persona = PERSONAS[names[plan.behaviour_of_customer[index]]]
        foreign = plan.country_of_customer[index] != "United Kingdom"
        region = "International" if foreign else str(rng.choice(UK_REGIONS))
        tier = _pick(rng, TIERS, persona.tier_weights)
        if rng.random() < 0.03:
            tier = ""
            traps.add("customers_blank_loyalty_tier")
        if persona.age is None:
            rows.append([f"{customer_id}", "", "", "", tier, "", "", region])
            continue
        rows.append([f"{customer_id}", str(int(rng.integers(*persona.age))),
                     str(int(rng.integers(*persona.income) // 100 * 100)),
                     _pick(rng, EDUCATION, persona.education_weights), tier,
                     _pick(rng, ("F", "M", "Other"), (48, 48, 4)),
                     _pick(rng, ("Single", "Married", "Divorced", "Widowed"), (4, 5, 1.5, 0.5)), region])
    if len(rows) >= 10:
        rows[1][1] = "forty"
        traps.add("customers_age_not_a_number")
        rows[2][1] = "230"
        traps.add("customers_age_out_of_range")
        rows.append(list(rows[3]))
        traps.add("customers_duplicate_lines")
    _write_csv(folders["customers"] / "customers.csv", CUSTOMER_HEADER, rows)

    months = sorted({(FIRST_DAY + dt.timedelta(days=d)).strftime("%Y-%m") for d in range(days)})
    month_index = {m: i for i, m in enumerate(months)}
    first_day = np.full(len(plan.customer_ids), days)
    last_day = np.full(len(plan.customer_ids), -1)
    customer_events = plan.event_customer >= 0
    np.minimum.at(first_day, plan.event_customer[customer_events], plan.event_seconds[customer_events] // 86400)
    np.maximum.at(last_day, plan.event_customer[customer_events], plan.event_seconds[customer_events] // 86400)
    by_month: dict[str, list] = {m: [] for m in months}
    engagement_rows = 0
    for index, customer_id in enumerate(plan.customer_ids):
        if last_day[index] < 0:
            continue
        persona = PERSONAS[names[plan.behaviour_of_customer[index]]]
        first_month = month_index[(FIRST_DAY + dt.timedelta(days=int(first_day[index]))).strftime("%Y-%m")]
        last_month = month_index[(FIRST_DAY + dt.timedelta(days=int(last_day[index]))).strftime("%Y-%m")]
        for month in months[first_month:last_month + 1]:
            opens = int(rng.poisson(persona.opens_per_month))
            sessions = int(rng.poisson(persona.sessions_per_month))
            clicks = int(rng.binomial(opens, persona.click_rate))
            by_month[month].append([f"{customer_id}", month, str(opens), str(clicks),
                                    str(sessions), str(int(sessions * rng.uniform(3, 9))),
                                    f"{sessions * rng.uniform(2, 7):.1f}"])
            engagement_rows += 1
    busiest = max(by_month, key=lambda m: len(by_month[m]))
    if len(by_month[busiest]) >= 5:
        by_month[busiest][0][4] = "-3"
        traps.add("engagement_negative_sessions")
        by_month[busiest][1] = by_month[busiest][1][:-1]
        traps.add("engagement_missing_field")
        by_month[busiest].append(list(by_month[busiest][2]))
        traps.add("engagement_duplicate_lines")
    for month, month_rows in by_month.items():
        if month_rows:
            _write_csv(folders["engagement"] / f"{month}.csv", ENGAGEMENT_HEADER, month_rows)

    product_rows = []
    for code, category, cost in zip(catalogue.codes, catalogue.categories, catalogue.unit_costs):
        blank = rng.random() < 0.02
        traps.add("products_without_cost", int(blank))
        product_rows.append([str(code), CATEGORIES[category], "" if blank else f"{cost:.2f}"])
    product_rows.append(list(product_rows[0]))
    traps.add("products_duplicate_lines")
    _write_csv(folders["products"] / "products.csv", PRODUCT_HEADER, product_rows)
    return {"customers": len(rows), "engagement": engagement_rows + traps.counts.get("engagement_duplicate_lines", 0),
            "products": len(product_rows), "traps": dict(sorted(traps.counts.items()))}


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
