"""The noise schedule and the closed-form forward process (Ho et al. Eqs. 4, 6, 7)."""
import math

import pytest
import torch


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedule_is_a_valid_variance_schedule(nb, name):
    s = nb.make_schedule(name, 1000)
    assert s.T == 1000 and s.betas.dtype == torch.float32
    assert (s.betas > 0).all() and (s.betas < 1).all()
    assert (s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all()          # signal only ever decreases
    assert s.alphas_cumprod[-1] < 1e-4                                    # x_T is (almost) pure noise


def test_linear_schedule_matches_ho_et_al(nb):
    betas = nb.linear_beta_schedule(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_cosine_schedule_matches_its_definition(nb):
    s, T = nb.make_schedule("cosine", 1000), 1000
    f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (1, 10, 500, 900):                                           # index t-1 holds alpha_bar_t
        assert s.alphas_cumprod[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-5)


def test_posterior_coefficients_match_eq_7(nb):
    s = nb.make_schedule("linear", 1000)
    b = nb.linear_beta_schedule(1000)                                     # float64, as the schedule computes
    a, ab = 1 - b, torch.cumprod(1 - b, dim=0)
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    torch.testing.assert_close(s.posterior_variance.double(), b * (1 - ab_prev) / (1 - ab), rtol=1e-5, atol=0)
    torch.testing.assert_close(s.posterior_mean_coef1.double(), b * ab_prev.sqrt() / (1 - ab), rtol=1e-5, atol=0)
    torch.testing.assert_close(s.posterior_mean_coef2.double(), (1 - ab_prev) * a.sqrt() / (1 - ab), rtol=1e-5, atol=0)
    # Eq. 7 with x_0 recovered from eps (Eq. 4) gives the eps-form mean of Eq. 11
    t, x_t, eps = 500, torch.tensor(0.3, dtype=torch.float64), torch.tensor(-1.2, dtype=torch.float64)
    x0 = (x_t - (1 - ab[t]).sqrt() * eps) / ab[t].sqrt()
    mean_eq7 = s.posterior_mean_coef1.double()[t] * x0 + s.posterior_mean_coef2.double()[t] * x_t
    mean_eq11 = (x_t - b[t] / (1 - ab[t]).sqrt() * eps) / a[t].sqrt()
    assert mean_eq7.item() == pytest.approx(mean_eq11.item(), rel=1e-5)


def test_q_sample_matches_closed_form_moments(nb):
    s = nb.make_schedule("linear", 1000)
    torch.manual_seed(0)
    n, t = 200_000, 300
    x0 = torch.full((n, 1, 1, 1), 0.7)
    x_t = nb.q_sample(s, x0, torch.full((n,), t), torch.randn_like(x0))
    ab = s.alphas_cumprod[t].item()
    se = math.sqrt((1 - ab) / n)
    assert abs(x_t.mean().item() - math.sqrt(ab) * 0.7) < 5 * se
    assert x_t.var().item() == pytest.approx(1 - ab, rel=0.01)


def test_q_sample_uses_each_images_own_step(nb):
    s = nb.make_schedule("linear", 1000)
    x0, noise = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    x_t = nb.q_sample(s, x0, torch.tensor([0, 999]), noise)
    torch.testing.assert_close(x_t[:, 0, 0, 0], s.sqrt_alphas_cumprod[[0, 999]])
