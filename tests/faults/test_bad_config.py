"""Bad configuration: one clear error line naming the setting and what is allowed, a non-zero
exit, and no table changed."""

import pytest

from customer_segmentation.ops.cli import main
from testkit import settings_flags, table_versions

pytestmark = pytest.mark.faults


def _flags_without(settings, *names):
    flags = settings_flags(settings)
    pairs = [(flags[i], flags[i + 1]) for i in range(0, len(flags), 2)]
    return [x for flag, value in pairs if flag.lstrip("-").replace("-", "_") not in names for x in (flag, value)]


@pytest.fixture(scope="module")
def versions_before(small_reference):
    return table_versions(small_reference)


@pytest.mark.parametrize("flags, setting, allowed", [
    (["--k-min", "1"], "k_min", "at least 2 segments"),
    (["--k-min", "6", "--k-max", "5"], "k_max", "the k range is empty"),
    (["--algorithms", "kmeans,dbscan"], "algorithms", "allowed: kmeans, bisecting_kmeans, gaussian_mixture"),
    (["--features", "recency_days,shoe_size"], "features", "allowed: recency_days, frequency, monetary"),
    (["--gold-schema", "gold; DROP TABLE x"], "gold_schema", "letters, digits and underscores"),
    (["--catalog", "main.other"], "catalog", "letters, digits and underscores"),
    (["--as-of-date", "2000-01-01"], "as_of_date", "is not after the first invoice"),
    (["--as-of-date", "yesterday"], "as_of_date", "YYYY-MM-DD"),
    (["--source-profile", "no_such_layout"], "source_profile", "neither a built-in profile"),
    (["--landing-path", "/no/such/folder"], "landing_path", "does not exist"),
    (["--clv-horizon-days", "-5"], "clv_horizon_days", "outside 1-3650 days"),
    (["--clv-annual-discount-rate", "1"], "clv_annual_discount_rate", "0 <= value < 1"),
    (["--clv-holdout-days", "0"], "clv_holdout_days", "at least 1 day"),
])
def test_bad_setting_is_one_line(small_reference, versions_before, capsys, flags, setting, allowed):
    settings = small_reference
    capsys.readouterr()
    base = _flags_without(settings, *[f.lstrip("-").replace("-", "_") for f in flags[::2]])
    code = main(["run", *base, *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert setting in err[0] and allowed in err[0], err[0]


def test_no_bad_setting_changed_any_table(small_reference, versions_before):
    # Runs after the cases above (file order); the versions were taken before the first of them.
    assert versions_before and table_versions(small_reference) == versions_before


def test_unknown_option_is_refused_by_the_cli(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--k-maximum", "4"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --k-maximum" in capsys.readouterr().err
