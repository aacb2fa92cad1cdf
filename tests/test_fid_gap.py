"""Hand-written FID statistics: agreement with torchmetrics, calibration of the paired gap interval (and why the old
real-vs-real rule was replaced), the real-image floor, and the cost model (the memorisation test: test_memorisation.py)."""
import time

import pytest
import torch
from torchmetrics.image.fid import _compute_fid

# synthetic check: identity-covariance Gaussian features, reference drawn like set a
D, N, M, TRIALS = 32, 300, 600, 40
GAP_TRIALS = 200  # the interval costs ~15 ms here: enough trials that a 10% false-alarm bound means something
TRUE_GAP = 1.3  # mean shift delta with ||delta||^2 = 1.3: population FID(b) - FID(a) = 1.3 (same covariances)


def torchmetrics_fid(features, reference):
    """torchmetrics' own FID formula on our mean and unbiased covariance, in float64."""
    a, r = features.double(), reference.double()
    return float(_compute_fid(a.mean(0), torch.cov(a.T), r.mean(0), torch.cov(r.T)))


def old_rule_differs(fid_a, fid_b, fid_real1, fid_real2):
    """The old rule: a difference whenever |fid_a - fid_b| exceeds one real-vs-real gap at the same N."""
    return abs(fid_a - fid_b) > abs(fid_real1 - fid_real2)


@pytest.mark.parametrize("n,d,m", [(40, 64, 100), (300, 64, 100), (80, 256, 200)])
def test_frechet_distance_matches_torchmetrics(nb, n, d, m):
    gen = torch.Generator().manual_seed(n + d)
    mix = torch.randn(d, d, generator=gen) / d**0.5
    features = torch.randn(n, d, generator=gen) @ mix + 0.3  # correlated, shifted
    reference = torch.randn(m, d, generator=gen)
    ours, theirs = nb.frechet_distance(features, reference), torchmetrics_fid(features, reference)
    assert ours == pytest.approx(theirs, rel=1e-3), (ours, theirs)


def test_fid_gap_refuses_sets_of_different_size(nb):
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="equal set sizes"):
        nb.fid_gap(torch.randn(50, 8, generator=gen), torch.randn(60, 8, generator=gen), torch.randn(80, 8, generator=gen))


def test_fid_gap_reports_the_difference_of_the_two_fids_inside_its_interval(nb):
    gen = torch.Generator().manual_seed(1)
    a, b, ref = (torch.randn(k, 16, generator=gen) for k in (200, 200, 400))
    r = nb.fid_gap(a, b + 0.1, ref, seed=3)
    assert r["fid_a"] == pytest.approx(nb.frechet_distance(a, ref), rel=1e-9)
    assert r["fid_b"] == pytest.approx(nb.frechet_distance(b + 0.1, ref), rel=1e-9)
    assert r["gap"] == pytest.approx(r["fid_a"] - r["fid_b"], abs=1e-12)
    assert r["low"] <= r["gap"] <= r["high"]
    assert nb.fid_gap(a, b + 0.1, ref, seed=3) == r  # a seed fixes the draws


@pytest.fixture(scope="module")
def trials(nb):
    """Per trial: (new verdict, old rule's call) for equal distributions and for a shifted set b."""
    delta = torch.zeros(D)
    delta[0] = TRUE_GAP**0.5
    out = {"same": [], "shifted": []}
    for t in range(GAP_TRIALS):
        gen = torch.Generator().manual_seed(1000 + t)
        ref, real1, real2, a = (torch.randn(k, D, generator=gen) for k in (M, N, N, N))
        fid_real1, fid_real2 = nb.frechet_distance(real1, ref), nb.frechet_distance(real2, ref)
        # b independent of a (no shared noise): the worst case for a paired method
        for name, b in (("same", torch.randn(N, D, generator=gen)), ("shifted", torch.randn(N, D, generator=gen) + delta)):
            r = nb.fid_gap(a, b, ref, seed=t)
            out[name].append((nb.verdict_code(r), old_rule_differs(r["fid_a"], r["fid_b"], fid_real1, fid_real2),
                              r["low"] <= -TRUE_GAP * (name == "shifted") <= r["high"]))
    return out


def rates(trials):
    """False-positive and power rates of the new interval and of the old rule."""
    same, shifted = trials["same"], trials["shifted"]
    return {"new_false_positive": sum(v != 2 for v, _, _ in same) / len(same),
            "new_power": sum(v == 0 for v, _, _ in shifted) / len(shifted),  # b is worse, so a ahead: high < 0
            "new_coverage": sum(c for *_, c in same + shifted) / len(same + shifted),  # holds the population gap
            "old_false_positive": sum(o for _, o, _ in same) / len(same),
            "old_power": sum(o for _, o, _ in shifted) / len(shifted)}


def test_fid_gap_rarely_calls_equal_distributions_different(trials):
    r = rates(trials)
    print(r)
    assert r["new_false_positive"] <= 0.10, r


def test_fid_gap_finds_a_true_gap_of_1_3_with_the_right_sign(trials):
    r = rates(trials)
    assert r["new_power"] >= 0.80, r


def test_fid_gap_interval_holds_the_population_gap_about_95_percent_of_the_time(trials):
    r = rates(trials)
    assert r["new_coverage"] >= 0.88, r


def test_old_real_vs_real_rule_calls_equal_distributions_different_too_often(trials):
    r = rates(trials)
    print(f"false positives: new {r['new_false_positive']:.2f}, old {r['old_false_positive']:.2f}; "
          f"power at gap {TRUE_GAP}: new {r['new_power']:.2f}, old {r['old_power']:.2f}")
    assert r["old_false_positive"] > 0.10, r


def test_shared_noise_narrows_the_paired_interval(nb):
    """Index i of a and b share x_T in our samplers; the paired bootstrap must turn that into a narrower interval."""
    widths = {"independent": 0.0, "shared": 0.0}
    for t in range(5):
        gen = torch.Generator().manual_seed(2000 + t)
        ref, a, noise = (torch.randn(k, D, generator=gen) for k in (M, N, N))
        a = a + 0.5  # a and b away from the reference, as generated sets are
        for name, b in (("independent", torch.randn(N, D, generator=gen) + 0.5), ("shared", 0.9 * a + 0.44 * noise + 0.05)):
            r = nb.fid_gap(a, b, ref, seed=t)
            widths[name] += r["high"] - r["low"]
    print(f"paired interval width, shared noise / independent: {widths['shared'] / widths['independent']:.2f}")
    assert widths["shared"] < 0.7 * widths["independent"], widths


@pytest.mark.parametrize("n,d", [(200, 16), (60, 128)])  # N > D and N < D (where resampling inflates FID most)
def test_fid_floor_interval_holds_the_mean_of_one_score_per_set(nb, n, d):
    gen = torch.Generator().manual_seed(3)
    sets = [torch.randn(n, d, generator=gen) for _ in range(3)]
    ref = torch.randn(2 * n, d, generator=gen)
    r = nb.fid_floor(sets, ref)
    assert len(r["scores"]) == 3
    assert r["scores"][1] == pytest.approx(nb.frechet_distance(sets[1], ref), rel=1e-9)
    assert r["fid"] == pytest.approx(sum(r["scores"]) / 3)
    assert r["low"] <= r["fid"] <= r["high"], r
    with pytest.raises(ValueError):
        nb.fid_floor(sets[:1], ref)
    with pytest.raises(ValueError):
        nb.fid_floor([sets[0], sets[1][: n // 2]], ref)


def test_fid_work_grows_with_n_and_forecasts_measured_seconds_within_a_factor_of_2(nb):
    sizes = (100, 500, 2000, 2048, 5000, 10_000)      # both eigen routes: N x N, then D x D (D = 2048)
    for kind in ("frechet", "interval", "floor"):
        work = [nb.fid_work(kind, n, 10_000) for n in sizes]
        assert all(w["flop64"] > 0 and sum(w["eigh"].values()) > 0 for w in work), work
        assert all(a["flop64"] + a["flop32"] < b["flop64"] + b["flop32"] for a, b in zip(work, work[1:])), (kind, work)
    rates = nb.statistics_rates("cpu")
    assert rates["flop64"] > 0 and rates["flop32"] > 0 and all(s > 0 for s in rates["eigh"].values()), rates
    seconds = [nb.statistics_seconds("interval", n, 10_000, rates) for n in sizes]
    assert all(0 < a < b for a, b in zip(seconds, seconds[1:])), seconds
    gen = torch.Generator().manual_seed(5)
    for n, m, d in ((200, 400, 512), (600, 800, 256)):                # N x N and D x D routes, ~0.3 s in all
        a, b, ref = (torch.randn(k, d, generator=gen, dtype=torch.float64) for k in (n, n, m))
        for kind, run in (("frechet", lambda: nb.frechet_distance(a, ref)),
                          ("interval", lambda: nb.fid_gap(a, b, ref))):
            run()
            measured = min(timed(run) for _ in range(3))
            forecast = nb.statistics_seconds(kind, n, m, rates, d)
            print(f"{kind} at n={n}, m={m}, d={d}: forecast {forecast * 1e3:.1f} ms, measured {measured * 1e3:.1f} ms")
            assert 0.5 < forecast / measured < 2, (kind, n, m, d, forecast, measured)


def timed(run):
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def test_verdict_reads_the_interval(nb):
    calls = [nb.verdict_code(dict(gap=gap, low=low, high=high)) for gap, low, high in
             ((-1.0, -2.0, -0.1), (1.0, 0.1, 2.0), (0.2, -1.0, 1.0))]
    assert calls == [0, 1, 2] and nb.verdict_code(None) == 3
