"""The "buy 'til you die" models, by maximum likelihood: BG/NBD for repeat purchases and the
probability a customer is still alive, Gamma-Gamma for spend per purchase.

Self-contained (numpy and scipy only): the registered lifetime-value model ships this file as its
code, so a serving endpoint scores exactly as the `lifetime_value` task does.

Notation as in the papers, time in weeks:
- Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
  Pareto/NBD model", Marketing Science 24(2): per customer x repeat transactions, the last at t_x,
  observed until T (weeks since the first transaction); parameters r, alpha (purchase rates
  ~ Gamma(r, alpha)) and a, b (drop-out probability after each purchase ~ Beta(a, b)).
  Log-likelihood: equation (6); P(alive): equation (A.2)-derived closed form in section 3;
  expected purchases in the next t weeks: equation (10).
- Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis",
  Journal of Marketing Research 42(4): mean spend m_x over x repeat transactions; parameters p, q,
  gamma (spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, gamma)). Log-likelihood of m_x
  given x, and E[M | p, q, gamma, m_x, x] = (gamma + m_x x) p / (p x + q - 1).

Both fits take distinct observations with their counts (weights): their cost grows with distinct
(x, t_x, T) and (x, m_x), not with customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

WEEK_DAYS = 7.0


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: parameters by name, their standard errors (from the observed
    information), the log-likelihood at the maximum, and whether the optimiser converged."""

    params: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    converged: bool
    message: str


def bgnbd_log_likelihood(params, x, t_x, T):
    """Per-observation log-likelihood of BG/NBD, equation (6) of the paper, in a stable form."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    alive = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.where(repeat, special.betaln(a + 1, b + np.maximum(x, 1) - 1) - special.betaln(a, b)
                       - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(alive, dropped)


def gamma_gamma_log_likelihood(params, x, m_x):
    """Per-observation log-likelihood of the mean spend m_x over x repeat transactions."""
    p, q, gamma = params
    x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(gamma)
            + (p * x - 1) * np.log(m_x) + p * x * np.log(x) - (p * x + q) * np.log(gamma + x * m_x))


# Parameters are optimised on their logarithms within these bounds: e^-12 .. e^12 holds every
# sensible estimate, and a parameter that runs towards a bound (past e^±10: the search stops
# wherever the gain along the ridge drops below rounding) means the data do not pin it down.
LOG_BOUND = 12.0
NEAR_BOUND = LOG_BOUND - 2.0


# Above this many distinct observations the starts are compared on a seeded sample of them, and
# only the best is then run to the maximum on all of them: the fit's cost stops growing with the
# starts times the observations (measured in BENCHMARKS.md).
START_SAMPLE = 2000


def _maximise(objective_of, data: tuple[np.ndarray, ...], names: tuple[str, ...], starts: list[np.ndarray]) -> Fit:
    """MLE over positive parameters: L-BFGS-B on their logarithms from each start, the best kept.

    `objective_of(*data)` gives the weighted log-likelihood and its gradient of the observations in
    `data` (their arrays, the weights last). The BG/NBD surface can be very flat in (a, b) (on the
    real data a log-likelihood within 1e-4 over b = 7.5 .. 7.7); an unbounded simplex then drifts to a
    boundary where the predictions overflow, so the search is bounded and several starts are compared.
    """
    value_and_gradient = objective_of(*data)
    weights = data[-1]
    total_weight = float(weights.sum())

    def search(function, start):
        def objective(log_params):
            params = np.exp(log_params)
            with np.errstate(all="ignore"):
                value, gradient = function(params)
            if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
                return 1e300, np.zeros_like(log_params)
            return -value, -gradient * params  # the chain rule onto the log-parameters

        return optimize.minimize(objective, start, method="L-BFGS-B", jac=True,
                                 bounds=[(-LOG_BOUND, LOG_BOUND)] * len(names),
                                 options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000})

    if len(weights) > START_SAMPLE:
        chosen = np.sort(np.random.default_rng(0).choice(len(weights), START_SAMPLE, replace=False))
        sample = objective_of(*(column[chosen] for column in data))
        best = min((search(sample, np.log(start)) for start in starts), key=lambda r: r.fun)
        result = search(value_and_gradient, best.x)
    else:
        result = min((search(value_and_gradient, np.log(start)) for start in starts), key=lambda r: r.fun)
    estimate = np.exp(result.x)
    with np.errstate(all="ignore"):
        hessian = _hessian(lambda values: value_and_gradient(values)[1], estimate)
    try:
        errors = np.sqrt(np.clip(np.diag(np.linalg.inv(-hessian)), 0, None))
    except np.linalg.LinAlgError:
        errors = np.full(len(names), np.nan)
    # Converged: the log-likelihood is finite and flat (its gradient on the log-parameters under 1e-3
    # per observation). On a flat ridge a parameter may settle anywhere along it, even at a bound:
    # the predictions are the same there, so the fit is used and the message says so.
    bounded = np.abs(result.x) > NEAR_BOUND
    at_bound = [n for n, hit in zip(names, bounded) if hit]
    flat = np.abs(np.where(bounded, 0.0, result.jac))
    converged = bool(result.fun < 1e300 and np.max(flat) < 1e-3 * max(1.0, total_weight))
    message = str(result.message) + (f"; {', '.join(at_bound)} ran to the bound e^±{LOG_BOUND:g}: the data do not "
                                     f"pin it down" if at_bound else "")
    return Fit(dict(zip(names, estimate.tolist())), dict(zip(names, errors.tolist())), -float(result.fun),
               converged, message)


def _hessian(gradient, point: np.ndarray) -> np.ndarray:
    """The Hessian at `point` by central differences of the exact gradient (relative steps), symmetrised."""
    steps = 1e-5 * np.maximum(np.abs(point), 1e-8)
    columns = [(gradient(point + step) - gradient(point - step)) / (2 * step[i])
               for i, step in enumerate(np.diag(steps))]
    hessian = np.column_stack(columns)
    return (hessian + hessian.T) / 2


def _bgnbd_objective(x, t_x, T, weights):
    """The weighted BG/NBD log-likelihood of equation (6) and its gradient in (r, alpha, a, b).

    Only the mixture of "still alive" and "gone after the last purchase" couples x, t_x and T: every
    other term depends on x alone and is summed once per distinct x with its total weight, and the
    special functions are evaluated per distinct x, T and t_x and gathered. So the work per summary
    is a handful of array operations, and a fit on tens of thousands of summaries takes about a second.
    """
    xs, x_at = np.unique(x, return_inverse=True)
    Ts, T_at = np.unique(T, return_inverse=True)
    ts, t_at = np.unique(t_x, return_inverse=True)
    weight_of_x = np.bincount(x_at, weights, minlength=len(xs))
    total_weight = weight_of_x.sum()
    no_repeat = xs == 0

    def value_and_gradient(params):
        r, alpha, a, b = params
        beta_ab = special.betaln(a, b)
        # Per distinct x; a customer without a repeat purchase cannot have dropped out after one.
        alive_x = special.betaln(a, b + xs) - beta_ab
        b_at_last = b + np.maximum(xs, 1) - 1  # b + x - 1, for the customers with a repeat purchase
        dropped_x = np.where(no_repeat, -np.inf, special.betaln(a + 1, b_at_last) - beta_ab)
        to_last_x = np.where(no_repeat, 0.0, 1.0 / b_at_last)
        psi_abx = special.digamma(a + b + xs)
        log_T, log_t = np.log(alpha + Ts)[T_at], np.log(alpha + ts)[t_at]
        rate_x = r + x
        alive = alive_x[x_at] - rate_x * log_T
        dropped = dropped_x[x_at] - rate_x * log_t
        mixture = np.logaddexp(alive, dropped)
        dropped_share = np.exp(dropped - mixture)  # P(gone after the last purchase | the summary)
        w_dropped = weights * dropped_share

        value = (weight_of_x @ (special.gammaln(r + xs) - special.gammaln(r)) + total_weight * r * np.log(alpha)
                 + weights @ mixture)
        gradient = np.array([
            weight_of_x @ (special.digamma(r + xs) - special.digamma(r)) + total_weight * np.log(alpha)
            - weights @ log_T - w_dropped @ (log_t - log_T),
            total_weight * r / alpha - (weights * rate_x) @ (
                1.0 / (alpha + T) + dropped_share * (1.0 / (alpha + t_x) - 1.0 / (alpha + T))),
            weight_of_x @ (special.digamma(a + b) - psi_abx) + w_dropped.sum() / a,
            weight_of_x @ (special.digamma(a + b) - special.digamma(b) - psi_abx + special.digamma(b + xs))
            - w_dropped @ to_last_x[x_at],
        ])
        return float(value), gradient

    return value_and_gradient


def _gamma_gamma_objective(x, m_x, weights):
    """The weighted Gamma-Gamma log-likelihood and its gradient in (p, q, gamma), the terms of x alone
    evaluated once per distinct x."""
    xs, x_at = np.unique(x, return_inverse=True)
    log_m, log_x = np.log(m_x), np.log(x)
    spend = x * m_x
    weight_sum = weights.sum()
    # The weighted sums that do not change with the parameters, summed once.
    x_log_mx = weights @ (x * (log_m + log_x))
    sum_log_m = weights @ log_m

    def value_and_gradient(params):
        p, q, gamma = params
        log_total = np.log(gamma + spend)
        px = p * xs
        px_q = px + q
        shape = p * x + q  # per summary
        lgamma_terms = (special.gammaln(px_q) - special.gammaln(px))[x_at]
        value = (weights @ (lgamma_terms - shape * log_total) - weight_sum * special.gammaln(q)
                 + weight_sum * q * np.log(gamma) + p * x_log_mx - sum_log_m)
        psi_px_q = special.digamma(px_q)[x_at]
        gradient = np.array([
            weights @ (x * (psi_px_q - special.digamma(px)[x_at] - log_total)) + x_log_mx,
            weights @ (psi_px_q - log_total) + weight_sum * (np.log(gamma) - special.digamma(q)),
            weight_sum * q / gamma - weights @ (shape / (gamma + spend)),
        ])
        return float(value), gradient

    return value_and_gradient


def fit_bgnbd(x, t_x, T, weights=None) -> Fit:
    """BG/NBD by maximum likelihood on (x, t_x, T) in weeks, each with its count."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    weights = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    mean_rate = max(np.average(x, weights=weights) / max(np.average(T, weights=weights), 1e-9), 1e-6)
    starts = [np.array([1.0, 1.0 / mean_rate, a, b]) for a, b in ((1.0, 3.0), (0.1, 1.0), (0.01, 10.0))]
    return _maximise(_bgnbd_objective, (x, t_x, T, weights), ("r", "alpha", "a", "b"), starts)


def fit_gamma_gamma(x, m_x, weights=None) -> Fit:
    """Gamma-Gamma by maximum likelihood on repeat customers' (x, m_x), m_x > 0, each with its count."""
    x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
    weights = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    mean = np.average(m_x, weights=weights)
    starts = [np.array([p, q, (q - 1) * mean / p]) for p, q in ((2.0, 3.0), (6.0, 4.0), (1.0, 10.0))]
    return _maximise(_gamma_gamma_objective, (x, m_x, weights), ("p", "q", "gamma"), starts)


def p_alive(params, x, t_x, T):
    """P(still alive | x, t_x, T): 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    log_ratio = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.clip(log_ratio, -700, 700))), 1.0)


def expected_purchases(params, t, x, t_x, T):
    """E[purchases in the next t weeks | x, t_x, T], equation (10) (Gauss hypergeometric 2F1)."""
    r, alpha, a, b = params
    t, x, t_x, T = (np.asarray(v, dtype=float) for v in (t, x, t_x, T))
    hypergeometric = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    growth = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hypergeometric
    return (a + b + x - 1) / (a - 1) * growth * p_alive(params, x, t_x, T)


def probability_of_purchase(params, t, x, t_x, T):
    """P(at least one purchase in the next t weeks | x, t_x, T). Drop-out happens only at a purchase,
    so no purchase means: gone (1 - P(alive)), or alive without an event of a rate whose posterior
    is Gamma(r + x, alpha + T), which has probability ((alpha + T) / (alpha + T + t))^(r + x)."""
    r, alpha, a, b = params
    t, x, t_x, T = (np.asarray(v, dtype=float) for v in (t, x, t_x, T))
    alive = p_alive(params, x, t_x, T)
    return alive * (1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x))


def expected_cumulative_purchases(params, t):
    """E[repeat purchases in the first t weeks] of a new customer, equation (9)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    hypergeometric = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hypergeometric)


def expected_spend(params, x, m_x):
    """E[spend per purchase | x repeat purchases of mean m_x]; the population mean without repeats."""
    p, q, gamma = params
    x = np.asarray(x, dtype=float)
    m_x = np.maximum(np.nan_to_num(np.asarray(m_x, dtype=float)), 0.0)  # repeat spend netted to nothing: 0
    return np.where(x > 0, (gamma + m_x * x) * p / (p * x + q - 1), p * gamma / (q - 1))


def discounted_purchases(params, horizon_weeks: float, annual_discount_rate: float, x, t_x, T,
                         step_weeks: float = 30 / WEEK_DAYS):
    """Expected purchases in the next `horizon_weeks`, each discounted to today: the horizon in
    steps of about a month, the purchases expected in a step discounted from its end."""
    ends = np.append(np.arange(step_weeks, horizon_weeks, step_weeks), horizon_weeks)
    total, before = 0.0, 0.0
    for end in ends:
        cumulative = expected_purchases(params, end, x, t_x, T)
        total = total + (cumulative - before) * (1 + annual_discount_rate) ** (-end * WEEK_DAYS / 365.0)
        before = cumulative
    return total


# Churn-risk bands by the probability of a purchase in the next 90 days (not by P(alive): BG/NBD
# lets customers drop out only right after a purchase, so it holds a one-time buyer to be alive,
# and where it finds little drop-out P(alive) is near 1 for everyone; see the README).
CHURN_WINDOW_DAYS = 90
ACTIVE_FROM = 0.5
AT_RISK_FROM = 0.2


def churn_risk(p_purchase) -> np.ndarray:
    """active (P(purchase in 90 days) >= 0.5), at risk (>= 0.2) or likely lost; None where unknown."""
    p_purchase = np.asarray(p_purchase, dtype=float)
    bands = np.where(p_purchase >= ACTIVE_FROM, "active",
                     np.where(p_purchase >= AT_RISK_FROM, "at risk", "likely lost"))
    return np.where(np.isnan(p_purchase), None, bands).astype(object)


def score(frame, config: dict):
    """The lifetime-value columns of customers (a pandas frame with x, t_x, T in weeks and m_x).

    `config`: `bgnbd` and `gamma_gamma` parameters (None when not fitted), `horizon_days`,
    `annual_discount_rate` and `margin`. Predictions are null where a model is missing.
    """
    import pandas as pd

    x, t_x, T = (frame[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    bgnbd, gamma_gamma = config.get("bgnbd"), config.get("gamma_gamma")
    nothing = np.full(n, np.nan)
    if bgnbd:
        params = tuple(bgnbd[k] for k in ("r", "alpha", "a", "b"))
        horizon = config["horizon_days"] / WEEK_DAYS
        window = CHURN_WINDOW_DAYS / WEEK_DAYS
        out["p_alive"] = p_alive(params, x, t_x, T)
        out["p_purchase_90d"] = purchase = probability_of_purchase(params, window, x, t_x, T)
        out["expected_purchases_90d"] = expected_purchases(params, window, x, t_x, T)
        out["expected_purchases_horizon"] = expected_purchases(params, horizon, x, t_x, T)
        discounted = discounted_purchases(params, horizon, config["annual_discount_rate"], x, t_x, T)
    else:
        purchase = discounted = nothing
        for column in ("p_alive", "p_purchase_90d", "expected_purchases_90d", "expected_purchases_horizon"):
            out[column] = nothing
    spend = (expected_spend(tuple(gamma_gamma[k] for k in ("p", "q", "gamma")), x,
                            frame["m_x"].to_numpy(dtype=float)) if gamma_gamma else nothing)
    out["expected_spend_per_purchase"] = spend
    out["predicted_clv"] = config["margin"] * spend * discounted
    out["churn_risk"] = churn_risk(purchase)
    return out
