"""The variational bound (Ho et al. Eq. 5) in bits per dimension, checked against exact answers.

For Gaussian data the optimal noise predictor is known in closed form (test_samplers_oracle.py), and
so is its expected bound: the estimator must reproduce it, and it must exceed the true NLL.
"""
import math

import pytest
import torch

from test_samplers_oracle import gaussian_oracle

MU, STD = 0.3, 0.5               # data x_0 ~ N(MU, STD^2) per dimension, as in the sampler tests
VARIANCE_TYPES = ("fixed_large", "fixed_small")
BINS = torch.arange(256, dtype=torch.float64) / 127.5 - 1            # the 8-bit values in [-1, 1]


def f64(value):
    return torch.tensor(value, dtype=torch.float64)


def gaussian_data(shape, seed, quantise=False):
    """x_0 ~ N(MU, STD^2) in float64; with quantise, clipped to [-1, 1] and rounded to 8 bits."""
    g = torch.Generator().manual_seed(seed)
    x0 = MU + STD * torch.randn(shape, generator=g, dtype=torch.float64)
    return (x0.clamp(-1, 1) * 127.5).round() / 127.5 if quantise else x0


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are small: one thread is faster than waking a pool, above all on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def vb(nb):
    """The notebook's defs (section 7 holds the bound)."""
    assert tuple(nb.VARIANCE_TYPES) == VARIANCE_TYPES
    return nb


def full_sum(vb, schedule, model, x0, seed, discrete):
    """The whole bound L_T + L_0 + sum_{t=2..T} L_{t-1}, nats per image (N, 2), one x_t per step."""
    g = torch.Generator().manual_seed(seed)
    total = vb.prior_kl(schedule, x0)[:, None].repeat(1, 2)
    for i in range(schedule.T):
        noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        total += vb.vlb_terms(schedule, model, x0, torch.full((len(x0),), i), noise, discrete)
    return total


def expected_gaussian_gap(schedule, variance_type):
    """E[L] - entropy in bits/dim for x_0 ~ N(MU, STD^2) and the optimal predictor, in closed form.
    Its mean is E[posterior mean | x_t]: a KL's mean part is coef1^2 Var(x_0|x_t) / (2 sigma^2)."""
    b = schedule._betas64
    ab = torch.cumprod(1 - b, 0)
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    beta_tilde, coef1 = b * (1 - ab_prev) / (1 - ab), b * ab_prev.sqrt() / (1 - ab)
    var = (b if variance_type == "fixed_large" else beta_tilde).clone()
    var[0] = beta_tilde[1]
    x0_var = STD ** 2 * (1 - ab) / (ab * STD ** 2 + 1 - ab)                 # Var(x_0 | x_t)
    L_T = 0.5 * (ab[-1] * (MU ** 2 + STD ** 2) - ab[-1] - torch.log(1 - ab[-1]))
    kl = (0.5 * (torch.log(var / beta_tilde) + beta_tilde / var - 1)
          + coef1 ** 2 * x0_var / (2 * var))
    L_0 = 0.5 * torch.log(2 * math.pi * var[0]) + x0_var[0] / (2 * var[0])
    entropy = 0.5 * math.log(2 * math.pi * math.e * STD ** 2)
    return (L_T + kl[1:].sum() + L_0 - entropy).item() / math.log(2)


# --- closed forms ---------------------------------------------------------------------------

@pytest.mark.parametrize("m1, v1, m2, v2", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -0.2, 2.0),
                                            (1.0, 1e-4, 1.02, 3e-4), (-0.5, 4.0, 0.5, 0.3)])
def test_normal_kl_matches_a_monte_carlo_estimate(vb, m1, v1, m2, v2):
    x = m1 + math.sqrt(v1) * torch.randn(400_000, generator=torch.Generator().manual_seed(0),
                                         dtype=torch.float64)
    log_ratio = (0.5 * math.log(v2 / v1) - (x - m1) ** 2 / (2 * v1)
                 + (x - m2) ** 2 / (2 * v2))                              # log q(x) - log p(x)
    se = log_ratio.std().item() / math.sqrt(len(x))
    kl = vb.normal_kl(f64(m1), f64(math.log(v1)), f64(m2), f64(math.log(v2))).item()
    assert abs(kl - log_ratio.mean().item()) < 4 * se + 1e-12, (kl, log_ratio.mean().item(), se)


@pytest.mark.parametrize("mean, scale", [(0.3, 0.05), (-1.0, 0.01), (1.2, 0.5), (0.0, 3.0),
                                         (0.5, 1e-3)])
def test_discretized_decoder_masses_over_all_256_bins_sum_to_one(vb, mean, scale):
    log_p = vb.discretized_gaussian_log_likelihood(BINS, f64(mean), f64(math.log(scale)))
    assert torch.isfinite(log_p).all()
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-9)


def test_discretized_decoder_approaches_density_times_bin_width_in_the_interior(vb):
    """With the scale a few bin widths w, a bin's mass is the density at its centre times w = 2/255,
    to a relative error (w/scale)^2 (z^2 - 1) / 24 at z standard deviations: < 0.15% if |z| < 1.5"""
    mean, scale = 0.1, 0.05
    log_p = vb.discretized_gaussian_log_likelihood(BINS, f64(mean), f64(math.log(scale)))
    density = torch.exp(-(BINS - mean) ** 2 / (2 * scale ** 2)) / math.sqrt(2 * math.pi) / scale
    interior = (BINS - mean).abs() < 1.5 * scale                          # far from the edge bins
    torch.testing.assert_close(log_p.exp()[interior], density[interior] * 2 / 255,
                               rtol=2e-3, atol=0)


def test_discretized_decoder_keeps_far_tails_finite_and_ordered(vb):
    """Far from the mean both CDF values round to 1 (or 0): a naive difference would give log 0."""
    x = f64([0.0, 0.5, 0.9, 0.99, -0.5, -0.99])
    log_p = vb.discretized_gaussian_log_likelihood(x, f64(-1.0), f64(math.log(0.01)))
    assert torch.isfinite(log_p).all()
    assert (log_p[:4].diff() < 0).all() and log_p[4] > log_p[0]           # falls away from the mean


def test_decoder_variance_is_beta_tilde_2_for_both_variance_types(vb):
    """beta-tilde_1 = 0; like Ho et al.'s code, both types use beta-tilde_2 at t = 1."""
    s = vb.make_schedule("linear", 1000)
    large, small = (vb.reverse_log_variance(s, v) for v in VARIANCE_TYPES)
    assert large[0] == small[0] == s.posterior_variance[1].double().log()
    torch.testing.assert_close(large[1:], s.betas[1:].double().log())
    torch.testing.assert_close(small[1:], s.posterior_variance[1:].double().log())


def test_prior_term_is_the_kl_of_q_xT_from_the_standard_normal(vb):
    s = vb.NoiseSchedule(torch.full((10,), 0.02, dtype=torch.float64))    # short: x_T keeps signal
    x0 = f64([[0.0, 0.5], [-1.0, 1.0]]).reshape(2, 1, 1, 2)
    ab = 0.98 ** 10
    expected = 0.5 * (ab * x0 ** 2 + (1 - ab) - 1 - math.log(1 - ab)).flatten(1).sum(1)
    torch.testing.assert_close(vb.prior_kl(s, x0), expected, rtol=1e-6, atol=0)


# --- the bound of the optimal predictor for Gaussian data ------------------------------------

@pytest.fixture(scope="module")
def gaussian_gap(vb):
    """Per image, bound minus true NLL in bits/dim (N, 2) for x_0 ~ N(MU, STD^2) (2048 images of
    4x4), the optimal predictor, T = 1000, linear schedule, continuous decoder (about 4 s)."""
    s = vb.make_schedule("linear", 1000)
    x0 = gaussian_data((2048, 1, 4, 4), seed=0)
    bound = full_sum(vb, s, gaussian_oracle(s, MU, STD), x0, seed=1, discrete=False)
    nll = (0.5 * math.log(2 * math.pi * STD ** 2)
           + (x0 - MU) ** 2 / (2 * STD ** 2)).flatten(1).sum(1)          # -log N(x_0; MU, STD^2)
    return s, (bound - nll[:, None]) / (x0[0].numel() * math.log(2))


# How close? At T = 1000 (linear schedule) the bound of the optimal predictor exceeds the true NLL
# of N(0.3, 0.5^2) data (1.06 bits/dim) by 0.165 bits/dim with sigma_t^2 = beta_t (fixed_large)
# and by 0.822 bits/dim with beta-tilde_t (fixed_small), in closed form (expected_gaussian_gap);
# the Monte Carlo here finds 0.165 +- 0.012 and 0.825 +- 0.014. The gap is the price of a fixed
# reverse variance: the true Var(x_{t-1} | x_t) for data of std 0.5 lies between beta-tilde_t and
# beta_t, nearer beta_t. Tolerance: 4 standard errors of the closed form, and at most 0.06 above it.
GAP_BITS = {"fixed_large": 0.165, "fixed_small": 0.822}


@pytest.mark.parametrize("variance_type", VARIANCE_TYPES)
def test_bound_of_the_optimal_predictor_exceeds_the_true_nll_by_the_closed_form_gap(
        vb, gaussian_gap, variance_type):
    s, gap = gaussian_gap
    gap = gap[:, VARIANCE_TYPES.index(variance_type)]  # paired with the NLL: its spread cancels
    mean, se = gap.mean().item(), gap.std().item() / math.sqrt(len(gap))
    expected = expected_gaussian_gap(s, variance_type)
    assert expected == pytest.approx(GAP_BITS[variance_type], abs=1e-3)
    assert mean - 3 * se > 0, (mean, se)                              # an upper bound on the NLL...
    assert abs(mean - expected) < 4 * se, (mean, expected, se)        # ...exactly this loose
    assert mean < GAP_BITS[variance_type] + 0.06, (mean, se)          # close: < 0.23 / 0.88 bpd


# --- the estimate from a few sampled steps ----------------------------------------------------

def test_sampled_step_estimate_agrees_with_the_exact_sum_over_all_steps(vb):
    """8-bit data, a slightly wrong predictor (so every step costs bits), discretised decoder."""
    s = vb.make_schedule("linear", 100)
    x0 = gaussian_data((1024, 1, 2, 2), seed=1, quantise=True)
    model = gaussian_oracle(s, MU + 0.1, STD * 1.2)
    exact = full_sum(vb, s, model, x0, seed=2, discrete=True) / (x0[0].numel() * math.log(2))
    est = vb.estimate_vlb(s, model, x0, draws=8, batch_size=256,
                          generator=torch.Generator().manual_seed(3))
    assert est["n_images"] == 1024 and est["draws_per_image"] == 8
    for i, v in enumerate(VARIANCE_TYPES):          # both random; the exact sum only through x_t
        se = math.hypot(est[v]["bpd_se"], exact[:, i].std().item() / math.sqrt(len(x0)))
        assert abs(est[v]["bpd"] - exact[:, i].mean().item()) < 3 * se, (v, est[v], exact.mean(0))
        parts = est[v]["L_T_bpd"] + est[v]["L_0_bpd"] + est[v]["sum_bpd"]
        assert parts == pytest.approx(est[v]["bpd"], rel=1e-9)


def test_estimate_is_reproducible_and_calls_the_network_once_per_step_drawn(vb):
    s = vb.make_schedule("linear", 100)
    oracle, calls = gaussian_oracle(s, MU, STD), []

    def model(x_t, t):
        calls.append(len(x_t))
        return oracle(x_t, t)

    x0 = gaussian_data((10, 1, 2, 2), seed=4)
    a, b = (vb.estimate_vlb(s, model, x0, 3, 4, torch.Generator().manual_seed(5), discrete=False)
            for _ in range(2))
    assert a == b
    assert calls == 2 * ([4] * 8 + [2] * 4)        # two runs; per batch (4, 4, 2): L_0 + 3 draws
    assert a["fixed_large"]["L_0_bpd"] == a["fixed_small"]["L_0_bpd"]   # one decoder variance


def test_per_step_curve_gives_finite_terms_that_fall_with_t(vb):
    s = vb.make_schedule("linear", 1000)
    t = torch.tensor([0, 1, 10, 100, 999])                                  # Python indices
    curve = vb.vlb_curve(s, gaussian_oracle(s, MU, STD), gaussian_data((64, 1, 2, 2), seed=6), t,
                         torch.Generator().manual_seed(7), discrete=False)  # (5, 2) bits/dim
    assert curve.shape == (5, 2) and torch.isfinite(curve).all()
    assert (curve[1:] > 0).all() and (curve[1:].diff(dim=0) < 0).all()   # KLs fall with t here
