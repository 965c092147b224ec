"""decide(): every verdict class under every test type, on hand-computed cases.

Hand arithmetic used below: for paired = [a - d, a, a + d] (n = 3) the SD is d and the 95 %
t-interval is a ± t(0.975, 2) * d / sqrt(3) = a ± 2.484138 d  (t(0.975, 2) = 4.302653).
"""

import math

import numpy as np
import pytest
from scipy import stats

from cellrepro import CellreproError
from cellrepro.publish.decision import CLASSES, classify, decide, gate
from cellrepro.publish.power import implied_sd
from cellrepro.verdicts import decide as decide_from_old_path

K = 4.302653 / math.sqrt(3)  # half-width per unit SD at n = 3


def test_decide_is_importable_under_the_issue_s_name():
    assert decide_from_old_path is decide


def test_interval_is_the_hand_computed_t_interval():
    d = decide([0.02, 0.025, 0.03], test="superiority", paper_effect=0.01)
    assert d.mean == pytest.approx(0.025)
    assert d.sd == pytest.approx(0.005)
    assert d.low == pytest.approx(0.025 - K * 0.005, abs=1e-6)
    assert d.high == pytest.approx(0.025 + K * 0.005, abs=1e-6)
    assert d.n == 3 and d["verdict"] == "holds" and not d.smaller_than_paper


@pytest.mark.parametrize("paired, paper, expected, smaller", [
    ([0.02, 0.025, 0.03], 0.01, "holds", False),           # [0.0126, 0.0374] clears 0
    ([0.002, 0.0025, 0.003], 0.01, "holds", True),         # [0.0013, 0.0037]: holds, below the paper's 0.01
    ([-0.02, -0.025, -0.03], 0.01, "fails", False),        # wholly below 0
    ([-0.001, 0.0, 0.001], 0.01, "smaller than the paper's", False),  # [-0.0025, 0.0025] excludes 0.01
    ([-0.01, 0.01, 0.02], 0.01, "underpowered", False),    # [-0.031, 0.045] holds 0 and 0.01
    ([-0.01, 0.01, 0.02], None, "underpowered", False),    # no paper effect: holds 0
    ([-0.02, -0.025, -0.03], -0.01, "holds", False),       # the paper's side is negative
])
def test_superiority_classes(paired, paper, expected, smaller):
    d = decide(paired, test="superiority", paper_effect=paper)
    assert d.verdict == expected
    assert d.smaller_than_paper is smaller


@pytest.mark.parametrize("paired, expected", [
    ([0.0, 0.001, 0.002], "holds"),           # [-0.0015, 0.0035] above -0.01
    ([-0.03, -0.035, -0.04], "fails"),        # [-0.047, -0.023] below -0.01
    ([-0.015, 0.0, 0.015], "underpowered"),   # [-0.037, 0.037] holds -0.01
])
def test_non_inferiority_classes(paired, expected):
    assert decide(paired, test="non-inferiority", margin=0.01).verdict == expected


def test_non_inferiority_smaller_than_the_paper_s():
    # [-0.0125, 0.0125] holds -0.01 but excludes the paper's +0.05
    assert decide([-0.005, 0.0, 0.005], test="non-inferiority", margin=0.01, paper_effect=0.05).verdict \
        == "smaller than the paper's"


@pytest.mark.parametrize("paired, expected", [
    ([0.001, -0.001, 0.0, 0.0005], "holds"),
    ([0.05, 0.06, 0.055], "fails"),           # wholly above +0.01
    ([-0.01, 0.01, 0.02], "underpowered"),
])
def test_equivalence_classes(paired, expected):
    assert decide(paired, test="equivalence", margin=0.01).verdict == expected


def test_equivalence_is_statsmodels_tost():
    x = np.array([0.004, -0.002, 0.006, 0.001, 0.003])
    d = decide(x, test="equivalence", margin=0.01)
    assert d.p_value is not None and d.p_value < 0.05 and d.verdict == "holds"
    # the same data against a margin the 90 % interval crosses: TOST does not reject
    wide = decide(x, test="equivalence", margin=0.004)
    assert wide.p_value > 0.05 and wide.verdict != "holds"


@pytest.mark.parametrize("paired, expected", [
    ([0.001, -0.002, 0.0, 0.002], "holds"),   # "no significant improvement": upper bound < +0.01
    ([0.05, 0.06, 0.055], "fails"),           # significantly above +0.01
    ([-0.02, 0.01, 0.04], "underpowered"),
])
def test_non_superiority_classes(paired, expected):
    assert decide(paired, test="non-superiority", margin=0.01).verdict == expected


def test_non_superiority_is_a_one_sided_t_test():
    x = [0.004, 0.006, 0.005, 0.007]
    d = decide(x, test="non-superiority", margin=0.01)
    expected = stats.ttest_1samp(x, popmean=0.01, alternative="less").pvalue
    assert d.p_value == pytest.approx(expected)


@pytest.mark.parametrize("paired, expected", [
    ([0.0, 0.0, 0.0], "holds"),                 # the paper's setting is our best in every seed
    ([-0.004, 0.002, 0.0], "holds"),            # mean -0.00067 within one SE (0.00176)
    ([-0.05, -0.06, -0.055], "fails"),          # significantly worse than the best
    ([-0.01, 0.0, -0.002], "underpowered"),     # mean -0.004 beyond one SE (0.0031), interval holds 0
])
def test_sweep_one_se_rule(paired, expected):
    assert decide(paired, test="sweep").verdict == expected


def test_a_failed_gate_means_not_testable_and_names_the_gate():
    g = gate("pseudo-labels kept", 0, at_least=1)
    d = decide([0.02, 0.025, 0.03], test="superiority", gates=[g, ("probe beats random", True)])
    assert d.verdict == "not testable here"
    assert d.failed_gates == [{"name": "pseudo-labels kept", "passed": False, "value": 0, "rule": ">= 1"}]
    assert [x["name"] for x in d.gates] == ["pseudo-labels kept", "probe beats random"]


def test_gates_accept_objects_and_dicts():
    class G:
        name, passed = "engaged", True
    d = decide([0.02, 0.025, 0.03], test="superiority", gates=[G(), {"name": "band", "passed": True}])
    assert d.verdict == "holds" and d.failed_gates == []


def test_gate_without_a_value_never_passes():
    assert not gate("x", None, at_least=0).passed
    assert not gate("x", float("nan"), within=(0, 1)).passed
    assert gate("x", 0.5, within=(0.2, 0.95)).passed


def _power(d, n, alpha=0.05):
    """Power of the two-sided one-sample t-test at standardised effect d, computed independently of
    scipy's noncentral t: T = (Z + d sqrt(n)) / sqrt(V / df) with V ~ chi2(df), integrated over V."""
    from scipy import integrate

    df, nc = n - 1, d * math.sqrt(n)
    crit = stats.t.ppf(1 - alpha / 2, df)

    def given(v):
        s = math.sqrt(v / df)
        return (stats.norm.sf(crit * s - nc) + stats.norm.cdf(-crit * s - nc)) * stats.chi2.pdf(v, df)

    return integrate.quad(given, 0, np.inf, limit=200)[0]


def test_mde_and_n_needed_have_80_percent_power_by_the_noncentral_t():
    paired = [-0.01, 0.01, 0.02]
    d = decide(paired, test="superiority", paper_effect=0.01, seconds_per_unit=100.0)
    sd = np.std(paired, ddof=1)
    assert _power(d.mde / sd, 3) == pytest.approx(0.8, abs=1e-3)
    assert _power(0.01 / sd, d.n_needed) >= 0.8 > _power(0.01 / sd, d.n_needed - 1)
    assert d.seconds_needed == pytest.approx(100.0 * d.n_needed)


def test_bootstrap_is_shown_not_used():
    images = [np.array([0.1, -0.1, 0.05]), np.array([0.0, 0.02, 0.01]), np.array([0.03, 0.04, 0.0])]
    a = decide([0.02, 0.025, 0.03], test="superiority", images=images)
    b = decide([0.02, 0.025, 0.03], test="superiority")
    assert a.verdict == b.verdict and a.bootstrap_images == 9
    assert a.bootstrap_low < np.mean(np.concatenate(images)) < a.bootstrap_high
    assert b.bootstrap_low is None


def test_one_unit_is_underpowered_without_an_interval():
    d = decide([0.02], test="superiority", paper_effect=0.01)
    assert d.verdict == "underpowered" and d.low is None and d.mde is None


def test_bad_input_is_refused():
    with pytest.raises(CellreproError, match="margin"):
        decide([0.0, 0.1], test="equivalence")
    with pytest.raises(CellreproError, match="test must be one of"):
        decide([0.0, 0.1], test="two-sided")
    with pytest.raises(CellreproError, match="descriptive"):
        decide([0.0, 0.1], test="descriptive")
    with pytest.raises(CellreproError, match="finite"):
        decide([0.0, float("nan")], test="superiority")


def test_every_class_is_reachable():
    seen = {decide(p, test="superiority", paper_effect=0.01, gates=g).verdict for p, g in [
        ([0.02, 0.025, 0.03], ()), ([-0.02, -0.025, -0.03], ()), ([-0.001, 0.0, 0.001], ()),
        ([-0.01, 0.01, 0.02], ()), ([0.02, 0.025, 0.03], [("x", False)])]}
    assert seen == set(CLASSES)


def test_implied_sd_inverts_the_interval_and_classify_agrees_with_decide():
    x = [0.004, -0.002, 0.006, 0.001]
    d = decide(x, test="superiority", paper_effect=0.02)
    sd = implied_sd(d.low, d.high, d.n)
    assert sd == pytest.approx(np.std(x, ddof=1))
    assert classify(d.mean, sd, d.n, test="superiority", paper_effect=0.02)["verdict"] == d.verdict


def test_non_inferiority_side_ignores_the_sign_of_a_small_paper_effect():
    """brightfield-C11 registers paper_effect -0.2 AP: a treatment 6 points better is not inferior."""
    assert decide([5, 6, 7], test="non-inferiority", margin=2.0, paper_effect=-0.2).verdict == "holds"
    assert decide([-5, -6, -7], test="non-inferiority", margin=2.0, paper_effect=-0.2).verdict == "fails"


@pytest.mark.parametrize("d", [2.0, 5.5, 6.5, 8.0, 9.5, 10.5, 12.0, 20.0])
def test_n_needed_is_the_least_n_with_80_percent_power_even_for_large_effects(d):
    """statsmodels' solver returns 2 or NaN here (df 1-2); the search on the noncentral t does not."""
    paired = [-0.5, 0.0, 0.5]  # SD 0.5
    n = decide(paired, test="superiority", paper_effect=d * 0.5).n_needed
    assert n is not None
    assert _power(d, n) >= 0.8 and (n == 2 or _power(d, n - 1) < 0.8)


def test_n_needed_for_one_sided_and_equivalence_tests_uses_their_quantiles():
    from cellrepro.publish.power import t_power

    paired = [0.004, -0.006, 0.001, 0.003]
    sd = np.std(paired, ddof=1)
    ns = decide(paired, test="non-superiority", margin=0.01).n_needed
    assert t_power(0.01 / sd, ns, two_sided=False) >= 0.8 > t_power(0.01 / sd, ns - 1, two_sided=False)
    eq = decide(paired, test="equivalence", margin=0.01).n_needed
    assert t_power(0.01 / sd, eq, two_sided=False) >= 0.9 > t_power(0.01 / sd, eq - 1, two_sided=False)


def test_planning_effect_gives_n_needed_where_the_paper_gives_no_effect():
    d = decide([-0.01, 0.01, 0.02], test="superiority", planning_effect=0.01)
    assert d.n_needed is not None and d.n_needed > 3
    assert decide([-0.01, 0.01, 0.02], test="superiority").n_needed is None


@pytest.mark.parametrize("test, margin", [("non-inferiority", 0.01), ("equivalence", 0.01),
                                          ("non-superiority", 0.01), ("sweep", None)])
def test_a_failed_gate_stops_every_test_type(test, margin):
    d = decide([0.0, 0.0, 0.0], test=test, margin=margin, gates=[("reference off the floor", False)])
    assert d.verdict == "not testable here"


def test_sweep_with_a_margin_needs_the_interval_above_minus_margin():
    noisy = [-0.04, 0.03, 0.0]  # mean -0.0033 within one SE (0.020), but the interval reaches -0.09
    assert decide(noisy, test="sweep").verdict == "holds"
    assert decide(noisy, test="sweep", margin=0.01).verdict == "underpowered"


def test_gate_values_that_are_not_numbers_never_pass():
    assert not gate("x", "not measured", at_least=0).passed
    assert gate("x", np.float32(0.5), within=(0.0, 1.0)).passed
