#!/usr/bin/env python3
"""Expected values for CPO's statistics (common/src/stats.rs), computed independently with scipy,
statsmodels and mpmath. Writes stats.json next to this file; functions/experiment/tests/golden.rs checks
the Rust implementation against it to 1e-6.

    pip install scipy statsmodels mpmath && python3 tests/golden/make_stats_golden.py
"""
import json
import os

import mpmath as mp
import numpy as np
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

ALPHA = 0.05
POWER = 0.8
mp.mp.dps = 30

# (control successes, control n, arm successes, arm n)
PAIRS = [
    (120, 1000, 150, 1000),
    (30, 250, 41, 260),
    (5, 62, 9, 61),
    (0, 40, 3, 40),
    (2, 2000, 0, 2100),
    (1000, 10000, 1050, 10000),
    (4980, 100000, 5210, 100000),
    (48000, 400000, 48950, 400100),
    (7, 7, 6, 9),
    (333, 1000, 333, 1000),
]

P_FAMILIES = [
    [0.01, 0.04, 0.03, 0.5],
    [0.001, 0.2, 0.2, 0.049, 0.0125, 0.9, 0.3, 0.04, 0.00001],
    [0.5],
    [0.04, 0.04, 0.04],
]

SRM = [
    ([2510, 2490, 2500, 2500], [0.25, 0.25, 0.25, 0.25]),
    ([5200, 4800], [0.5, 0.5]),
    ([1000, 650, 350], [0.5, 0.3, 0.2]),
    ([25123, 24877, 12400, 12600], [1 / 3, 1 / 3, 1 / 6, 1 / 6]),
]


def prob_beat(kc, nc, k, n):
    """P(p_arm > p_control) for Beta(1+k, 1+n-k) posteriors: Evan Miller's exact sum, in 30-digit precision."""
    a_a, b_a = mp.mpf(1 + kc), mp.mpf(1 + nc - kc)
    a_b, b_b = 1 + k, mp.mpf(1 + n - k)
    total = mp.mpf(0)
    for i in range(a_b):
        total += mp.exp(mp.log(mp.beta(a_a + i, b_a + b_b)) - mp.log(b_b + i) - mp.log(mp.beta(1 + i, b_b)) - mp.log(mp.beta(a_a, b_a)))
    return float(total)


def expected_loss(kc, nc, k, n):
    """E[max(p_control - p_arm, 0)] = ∫ f_arm(x) E[(p_control - x)+] dx, by scipy quad over the posterior bulk, with
    E[(A - x)+] = mean_A · sf_Beta(a+1,b)(x) - x · sf_Beta(a,b)(x) from scipy's (Boost) incomplete beta."""
    a_a, b_a = 1 + kc, 1 + nc - kc
    a_b, b_b = 1 + k, 1 + n - k
    mean_a = a_a / (a_a + b_a)
    fb = stats.beta(a_b, b_b)
    sf1, sf0 = stats.beta(a_a + 1, b_a), stats.beta(a_a, b_a)

    def integrand(x):
        return fb.pdf(x) * (mean_a * sf1.sf(x) - x * sf0.sf(x))

    pts = set()
    for a, b in ((a_a, b_a), (a_b, b_b)):
        m = a / (a + b)
        sd = (a * b / ((a + b) ** 2 * (a + b + 1))) ** 0.5
        for j in range(-40, 41):
            x = m + j * sd
            if 0 < x < 1:
                pts.add(x)
    edges = [0.0] + sorted(pts) + [1.0]
    total = 0.0
    for lo, hi in zip(edges, edges[1:]):
        total += integrate.quad(integrand, lo, hi, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
    return total


def pair_case(kc, nc, k, n):
    lo, hi = proportion_confint(k, n, alpha=ALPHA, method="wilson")
    clo, chi = proportion_confint(kc, nc, alpha=ALPHA, method="wilson")
    z, p = proportions_ztest([k, kc], [n, nc])  # pooled variance by default
    table = np.array([[k, n - k], [kc, nc - kc]])
    both_degenerate = (k + kc) in (0, n + nc)
    if both_degenerate:
        chi2_p, yates_p = 1.0, 1.0
    else:
        chi2_p = stats.chi2_contingency(table, correction=False)[1]
        yates_p = stats.chi2_contingency(table, correction=True)[1]
        assert abs(chi2_p - p) < 1e-12, (chi2_p, p)
    d = confint_proportions_2indep(k, n, kc, nc, method="newcomb", compare="diff", alpha=ALPHA)
    case = {
        "kc": kc, "nc": nc, "k": k, "n": n,
        "wilson_arm": [lo, hi], "wilson_control": [clo, chi],
        "diff": k / n - kc / nc,
        "p_value": 1.0 if both_degenerate else p,
        "p_value_yates": yates_p,
        "newcombe": [d[0], d[1]],
        "prob_beat_control": prob_beat(kc, nc, k, n),
        "expected_loss": expected_loss(kc, nc, k, n),
    }
    if kc > 0:
        case["lift"] = (k / n) / (kc / nc) - 1
    if kc > 0 and k > 0:
        r = confint_proportions_2indep(k, n, kc, nc, method="log", compare="ratio", alpha=ALPHA)
        case["lift_ci"] = [r[0] - 1, r[1] - 1]
    base = kc / nc
    se = np.sqrt(base * (1 - base) * (1 / nc + 1 / n))
    zc = stats.norm.ppf(1 - ALPHA / 2)
    case["mde"] = (zc + stats.norm.ppf(POWER)) * se
    if se > 0:
        shift = abs(case["diff"]) / se
        case["power"] = stats.norm.cdf(shift - zc) + stats.norm.cdf(-shift - zc)
    return case


def main():
    out = {
        "alpha": ALPHA,
        "power": POWER,
        "z_0975": stats.norm.ppf(0.975),
        "pairs": [pair_case(*p) for p in PAIRS],
        "families": [
            {"p": f, "holm": list(multipletests(f, method="holm")[1]), "bh": list(multipletests(f, method="fdr_bh")[1])}
            for f in P_FAMILIES
        ],
        "srm": [],
    }
    for obs, share in SRM:
        exp = np.array(share) / sum(share) * sum(obs)
        stat, p = stats.chisquare(obs, exp)
        out["srm"].append({"observed": obs, "share": share, "statistic": stat, "p_value": p})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stats.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, default=float)
        fh.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
