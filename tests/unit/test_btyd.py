"""BG/NBD and Gamma-Gamma: likelihoods and predictions checked by hand, fits against the oracle.

The oracle is `lifetimes` (archived, a test dependency only) on the CDNOW data the papers use, which
ships with it; the papers' published estimates are checked too.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special

from customer_segmentation.models import btyd
from customer_segmentation.ops.generate import PurchaseProcess, draw_purchases

PARAMS = (0.5, 2.0, 0.8, 2.5)  # r, alpha, a, b
SPEND = (6.0, 4.0, 15.0)        # p, q, gamma


def test_bgnbd_likelihood_of_a_one_time_buyer_is_the_chance_of_no_purchase():
    r, alpha, _, _ = PARAMS
    # x = 0: alive for sure, no purchase in T weeks: (alpha / (alpha + T))^r.
    assert btyd.bgnbd_log_likelihood(PARAMS, 0, 0, 10.0) == pytest.approx(r * math.log(alpha / (alpha + 10)))


def test_bgnbd_likelihood_of_one_repeat_purchase_written_out():
    r, alpha, a, b = PARAMS
    # x = 1: B(a, b+1)/B(a, b) = b/(a+b) (still alive), B(a+1, b)/B(a, b) = a/(a+b) (gone after it).
    by_hand = r * alpha ** r * (b / (a + b) * (alpha + 10) ** -(r + 1) + a / (a + b) * (alpha + 3) ** -(r + 1))
    assert btyd.bgnbd_log_likelihood(PARAMS, 1, 3.0, 10.0) == pytest.approx(math.log(by_hand))


def test_gamma_gamma_likelihood_is_the_mixture_over_the_spend_scale():
    p, q, gamma = SPEND
    # x = 1: the compound gamma density, in closed form.
    by_hand = (math.gamma(p + q) / (math.gamma(p) * math.gamma(q)) * gamma ** q * 20.0 ** (p - 1)
               / (gamma + 20.0) ** (p + q))
    assert btyd.gamma_gamma_log_likelihood(SPEND, 1, 20.0) == pytest.approx(math.log(by_hand))

    # x = 3: the mean of 3 spends ~ Gamma(3p, rate 3 nu), integrated over nu ~ Gamma(q, rate gamma).
    def integrand(nu):
        mean_density = math.exp(3 * p * math.log(3 * nu) + (3 * p - 1) * math.log(20.0) - 3 * nu * 20.0
                                - special.gammaln(3 * p))
        return mean_density * math.exp(q * math.log(gamma) + (q - 1) * math.log(nu) - gamma * nu
                                       - special.gammaln(q))

    numeric, _ = integrate.quad(integrand, 0, np.inf)
    assert btyd.gamma_gamma_log_likelihood(SPEND, 3, 20.0) == pytest.approx(math.log(numeric), rel=1e-8)


def test_probability_alive():
    r, alpha, a, b = PARAMS
    assert btyd.p_alive(PARAMS, 0, 0, 30.0) == 1.0, "BG/NBD: nobody drops out before a repeat purchase"
    by_hand = 1 / (1 + a / (b + 1) * ((alpha + 30) / (alpha + 12)) ** (r + 2))
    assert btyd.p_alive(PARAMS, 2, 12.0, 30.0) == pytest.approx(by_hand)
    # The longer the silence since the last purchase, the lower.
    assert btyd.p_alive(PARAMS, 2, 29.0, 30.0) > btyd.p_alive(PARAMS, 2, 12.0, 30.0) > btyd.p_alive(PARAMS, 2, 1, 30)


def test_a_new_customer_expects_what_the_population_does():
    """Conditional on nothing observed (x = t_x = T = 0), equation (10) is equation (9)."""
    t = np.array([1.0, 13.0, 52.0, 200.0])
    assert btyd.expected_purchases(PARAMS, t, 0, 0, 0) == pytest.approx(btyd.expected_cumulative_purchases(PARAMS, t))
    assert btyd.expected_purchases(PARAMS, 0.0, 3, 10, 20) == 0.0


def test_probability_of_a_purchase():
    r, alpha, _, _ = PARAMS
    # Brand new: alive for sure, so 1 - P(no event of a Gamma(r, alpha) rate in t weeks).
    assert btyd.probability_of_purchase(PARAMS, 13.0, 0, 0, 0) == pytest.approx(1 - (alpha / (alpha + 13)) ** r)
    chance = btyd.probability_of_purchase(PARAMS, 13.0, 4, 20.0, 40.0)
    assert 0 < chance < btyd.p_alive(PARAMS, 4, 20.0, 40.0)


def test_discounting_at_zero_is_the_expected_purchases():
    args = (np.array([0, 2, 5]), np.array([0, 10.0, 30.0]), np.array([40.0, 40.0, 40.0]))
    undiscounted = btyd.discounted_purchases(PARAMS, 52.0, 0.0, *args)
    assert undiscounted == pytest.approx(btyd.expected_purchases(PARAMS, 52.0, *args))
    assert np.all(btyd.discounted_purchases(PARAMS, 52.0, 0.1, *args) < undiscounted)


def test_expected_spend_shrinks_a_customer_mean_towards_the_population():
    p, q, gamma = SPEND
    population = p * gamma / (q - 1)
    assert btyd.expected_spend(SPEND, 0, np.nan) == pytest.approx(population)
    spend = btyd.expected_spend(SPEND, np.array([1, 10]), np.array([100.0, 100.0]))
    assert spend == pytest.approx((gamma + 100 * np.array([1, 10])) * p / (p * np.array([1, 10]) + q - 1))
    assert population < spend[0] < spend[1] < 100, "more purchases: closer to the customer's own mean"


def test_churn_bands_have_the_stated_thresholds():
    bands = btyd.churn_risk([0.9, btyd.ACTIVE_FROM, 0.49, btyd.AT_RISK_FROM, 0.19, np.nan])
    assert bands.tolist() == ["active", "active", "at risk", "at risk", "likely lost", None]


def test_a_fit_on_distinct_observations_with_counts_is_the_fit_on_every_customer():
    x, t_x, T = drawn_summary(customers=2000, seed=3)
    each = btyd.fit_bgnbd(x, t_x, T)
    combos, counts = np.unique(np.c_[x, t_x, T], axis=0, return_counts=True)
    grouped = btyd.fit_bgnbd(*combos.T, counts)
    assert len(combos) < 0.6 * 2000 and each.converged and grouped.converged
    assert grouped.log_likelihood == pytest.approx(each.log_likelihood, rel=1e-9)
    for name, value in each.params.items():
        assert grouped.params[name] == pytest.approx(value, rel=1e-4), name


def test_starts_compared_on_a_sample_reach_the_maximum_every_start_reaches_on_all_observations(monkeypatch):
    """Above START_SAMPLE distinct observations the starts are compared on a sample and only the best
    is run on all of them: the same maximum as every start run on all of them."""
    x, t_x, T = drawn_summary(customers=20_000, seed=7)
    combos, counts = np.unique(np.c_[x, t_x, T], axis=0, return_counts=True)
    rng = np.random.default_rng(8)
    repeat = x[x > 0]
    spend = (repeat, rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 15.0, len(repeat))))
    assert len(combos) > 2 * btyd.START_SAMPLE and len(repeat) > 2 * btyd.START_SAMPLE
    sampled = btyd.fit_bgnbd(*combos.T, counts), btyd.fit_gamma_gamma(*spend)
    monkeypatch.setattr(btyd, "START_SAMPLE", 10**9)
    everywhere = btyd.fit_bgnbd(*combos.T, counts), btyd.fit_gamma_gamma(*spend)
    for fit, reference in zip(sampled, everywhere):
        assert fit.converged and reference.converged
        assert fit.log_likelihood == pytest.approx(reference.log_likelihood, rel=1e-10)
        for name, value in reference.params.items():
            assert fit.params[name] == pytest.approx(value, rel=1e-5), name
            assert fit.standard_errors[name] == pytest.approx(reference.standard_errors[name], rel=1e-3), name


def test_a_fit_on_the_no_drop_out_ridge_converges_and_predicts_the_same_in_any_order():
    # Customers who hardly ever drop out (as in the real data): the maximum lies where a -> 0 with b
    # free, so a and b settle anywhere along that ridge; the fit must still converge and its
    # predictions must not depend on where (or on the order of the summaries).
    x, t_x, T = drawn_summary(customers=3000, seed=4, process=PurchaseProcess(r=0.8, alpha=10.0, a=1e-6, b=10.0))
    combos, counts = np.unique(np.c_[x, t_x, T], axis=0, return_counts=True)
    fits = []
    for seed in range(4):
        order = np.random.default_rng(seed).permutation(len(combos))
        fits.append(btyd.fit_bgnbd(*combos[order].T, counts[order]))
    assert all(fit.converged for fit in fits), [fit.message for fit in fits]
    assert max(fit.params["a"] for fit in fits) < 1e-3
    predicted = [btyd.expected_purchases(tuple(fit.params.values()), 13.0, *combos.T) @ counts for fit in fits]
    for fit, total in zip(fits[1:], predicted[1:]):
        assert fit.log_likelihood == pytest.approx(fits[0].log_likelihood, rel=1e-9)
        assert total == pytest.approx(predicted[0], rel=1e-4)
        for name in ("r", "alpha"):
            assert fit.params[name] == pytest.approx(fits[0].params[name], rel=1e-5), name


def drawn_summary(customers: int, seed: int, days: int = 365, process: PurchaseProcess | None = None):
    """(x, t_x, T) in weeks, on the day grid, of customers buying as BG/NBD says (the generator's draws)."""
    customer, day, _ = draw_purchases(np.random.default_rng(seed), process or PurchaseProcess(), customers, days)
    first = np.full(customers, days)
    np.minimum.at(first, customer, day)
    last = np.zeros(customers, int)
    np.maximum.at(last, customer, day)
    x = np.bincount(customer, minlength=customers) - 1
    return x.astype(float), (last - first) / 7.0, (days - first) / 7.0


@pytest.fixture(scope="module")
def cdnow():
    datasets = pytest.importorskip("lifetimes.datasets", reason="lifetimes is the test oracle (requirements-dev)")
    return (datasets.load_cdnow_summary(index_col=[0]),
            datasets.load_cdnow_summary_data_with_monetary_value())


def test_bgnbd_equals_the_oracle_and_the_paper_on_cdnow(cdnow):
    from lifetimes import BetaGeoFitter

    summary, _ = cdnow
    fit = btyd.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    oracle = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"]).params_
    assert fit.converged
    for name in ("r", "alpha", "a", "b"):
        assert fit.params[name] == pytest.approx(oracle[name], rel=1e-4), name
    # Fader, Hardie & Lee (2005), table in section 5: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    paper = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert {k: round(v, 3) for k, v in fit.params.items()} == paper
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert all(0 < fit.standard_errors[k] < fit.params[k] for k in paper)


def test_gamma_gamma_equals_the_oracle_and_the_paper_on_cdnow(cdnow):
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    _, spend = cdnow
    repeaters = spend[spend["frequency"] > 0]
    fit = btyd.fit_gamma_gamma(repeaters["frequency"], repeaters["monetary_value"])
    oracle = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"]).params_
    assert fit.converged
    for name, oracle_name in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert fit.params[name] == pytest.approx(oracle[oracle_name], rel=1e-4), name
    # Fader, Hardie & Lee (2005), iso-value curves: p = 6.25, q = 3.74, gamma = 15.44.
    assert [fit.params[k] for k in ("p", "q", "gamma")] == pytest.approx([6.25, 3.74, 15.44], abs=0.01)
    # The pyfunc's scoring gives the oracle's conditional expectations.
    model = btyd.fit_bgnbd(*(cdnow[0][c] for c in ("frequency", "recency", "T")))
    sample = spend.head(200)
    config = {"bgnbd": model.params, "gamma_gamma": fit.params, "horizon_days": 365, "annual_discount_rate": 0.0,
              "margin": 1.0}
    scored = btyd.score(sample.rename(columns={"frequency": "x", "recency": "t_x", "monetary_value": "m_x"}), config)
    expected_spend = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"]) \
        .conditional_expected_average_profit(sample["frequency"], sample["monetary_value"])
    repeat = sample["frequency"].to_numpy() > 0
    assert scored["expected_spend_per_purchase"].to_numpy()[repeat] == pytest.approx(
        expected_spend.to_numpy()[repeat], rel=1e-4)
    bgf = BetaGeoFitter().fit(*(cdnow[0][c] for c in ("frequency", "recency", "T")))
    assert scored["p_alive"].to_numpy() == pytest.approx(
        bgf.conditional_probability_alive(sample["frequency"], sample["recency"], sample["T"]), rel=1e-3)
    assert scored["expected_purchases_90d"].to_numpy() == pytest.approx(
        bgf.conditional_expected_number_of_purchases_up_to_time(90 / 7, sample["frequency"], sample["recency"],
                                                                sample["T"]), rel=1e-3)


def test_the_fits_objectives_are_the_summed_likelihoods_with_their_exact_gradients():
    """The fit maximises a regrouped form of each log-likelihood with its analytic gradient: both
    must equal the per-observation formula summed, and its central differences."""
    x, t_x, T = drawn_summary(customers=3000, seed=5)
    combos, counts = np.unique(np.c_[x, t_x, T], axis=0, return_counts=True)
    weights = counts.astype(float)
    rng = np.random.default_rng(6)
    spend_x = rng.integers(1, 30, 500).astype(float)
    spend_m = rng.gamma(2.0, 20.0, 500)
    spend_weights = rng.integers(1, 4, 500).astype(float)
    cases = [(btyd._bgnbd_objective(*combos.T, weights), lambda p: weights @ btyd.bgnbd_log_likelihood(p, *combos.T),
              [(0.5, 2.0, 0.8, 2.5), (0.8, 10.0, 0.01, 5.0), (2.0, 30.0, 1.5, 0.7)]),
             (btyd._gamma_gamma_objective(spend_x, spend_m, spend_weights),
              lambda p: spend_weights @ btyd.gamma_gamma_log_likelihood(p, spend_x, spend_m),
              [(6.0, 4.0, 15.0), (1.5, 2.5, 80.0)])]
    for objective, summed, points in cases:
        for point in points:
            point = np.array(point)
            value, gradient = objective(point)
            assert value == pytest.approx(summed(point), rel=1e-12)
            steps = 1e-6 * point
            numeric = [(summed(point + step) - summed(point - step)) / (2 * step[i])
                       for i, step in enumerate(np.diag(steps))]
            assert gradient == pytest.approx(numeric, rel=1e-5, abs=1e-3), point
