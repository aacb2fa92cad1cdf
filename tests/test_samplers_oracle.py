"""Samplers checked against data whose optimal noise predictor is known in closed form.

With the exact E[eps | x_t], the reverse process must carry N(0, I) back to the data distribution,
so any error in a sampler's equations shows up as wrong means, variances or mixture weights.
"""
import math

import pytest
import torch

N = 20_000  # particles; standard errors below are computed for this many


def gaussian_oracle(schedule, mu, std):
    """eps*(x_t, t) for data x_0 ~ N(mu, std^2): x_t is Gaussian, so E[eps | x_t] is linear in x_t."""
    def model(x_t, t):
        ab = schedule.alphas_cumprod[t].reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * mu) / (ab * std ** 2 + 1 - ab)
    return model


def mixture_oracle(schedule, points, weights):
    """eps*(x_t, t) for data on a few points: E[x_0 | x_t] is a softmax-weighted average of the points."""
    points, log_w = torch.tensor(points), torch.tensor(weights).log()
    def model(x_t, t):
        ab = schedule.alphas_cumprod[t].reshape(-1, 1, 1, 1)
        logits = log_w - (x_t - ab.sqrt() * points) ** 2 / (2 * (1 - ab))   # (B, 1, 1, K)
        x0_mean = (logits.softmax(dim=-1) * points).sum(dim=-1, keepdim=True)
        return (x_t - ab.sqrt() * x0_mean) / (1 - ab).sqrt()
    return model


def assert_gaussian(x, mu, std):
    se_mean = std / math.sqrt(len(x))
    assert abs(x.mean().item() - mu) < 5 * se_mean, (x.mean().item(), mu)
    assert x.std().item() == pytest.approx(std, rel=0.04)


def assert_mixture(x, points, weights):
    nearest = (x.reshape(-1, 1) - torch.tensor(points)).abs().argmin(dim=1)
    assert (x.reshape(-1) - torch.tensor(points)[nearest]).abs().quantile(0.99) < 0.05   # mass sits on the points
    for k, w in enumerate(weights):
        share = (nearest == k).float().mean().item()
        assert abs(share - w) < 5 * math.sqrt(w * (1 - w) / len(x)), (k, share, w)


MU, STD = 0.3, 0.5
POINTS, WEIGHTS = [-0.8, 0.1, 0.6], [0.2, 0.5, 0.3]


@pytest.mark.parametrize("variance_type", ["fixed_large", "fixed_small"])
def test_ancestral_sampler_reproduces_gaussian_data(nb, variance_type):
    s = nb.make_schedule("linear", 1000)
    x = nb.p_sample_loop(s, gaussian_oracle(s, MU, STD), (N, 1, 1, 1), torch.Generator().manual_seed(1),
                         variance_type=variance_type, clip_sample=False)
    assert_gaussian(x, MU, STD)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ancestral_sampler_reproduces_mixture_weights(nb, schedule):
    s = nb.make_schedule(schedule, 1000)
    x = nb.p_sample_loop(s, mixture_oracle(s, POINTS, WEIGHTS), (N, 1, 1, 1), torch.Generator().manual_seed(2))
    assert_mixture(x, POINTS, WEIGHTS)


def test_ddim_reproduces_gaussian_data(nb):
    s = nb.make_schedule("linear", 1000)
    x = nb.ddim_sample(s, gaussian_oracle(s, MU, STD), (N, 1, 1, 1), steps=100, eta=0.0,
                       generator=torch.Generator().manual_seed(3), clip_sample=False)
    assert_gaussian(x, MU, STD)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_reproduces_mixture_weights(nb, schedule):
    s = nb.make_schedule(schedule, 1000)
    x = nb.ddim_sample(s, mixture_oracle(s, POINTS, WEIGHTS), (N, 1, 1, 1), steps=50, eta=0.0,
                       generator=torch.Generator().manual_seed(4))
    assert_mixture(x, POINTS, WEIGHTS)


def test_ddim_with_eta_one_on_every_step_is_the_ancestral_sampler(nb):
    """Song et al.: eta = 1 over all T steps gives sigma_t^2 = beta-tilde_t and the DDPM posterior mean."""
    s = nb.make_schedule("linear", 1000)
    model = mixture_oracle(s, POINTS, WEIGHTS)
    x_T = torch.randn(2000, 1, 1, 1, generator=torch.Generator().manual_seed(8))
    ddim = nb.ddim_sample(s, model, x_T.shape, steps=1000, eta=1.0, x_T=x_T, generator=torch.Generator().manual_seed(9))
    ddpm = nb.p_sample_loop(s, model, x_T.shape, torch.Generator().manual_seed(9), x_T=x_T, variance_type="fixed_small")
    torch.testing.assert_close(ddim, ddpm, atol=1e-3, rtol=0)


def test_ddim_with_eta_zero_is_deterministic_given_the_noise(nb):
    s = nb.make_schedule("linear", 1000)
    model = mixture_oracle(s, POINTS, WEIGHTS)
    x_T = torch.randn(64, 1, 1, 1, generator=torch.Generator().manual_seed(5))
    a = nb.ddim_sample(s, model, x_T.shape, steps=20, x_T=x_T, generator=torch.Generator().manual_seed(6))
    b = nb.ddim_sample(s, model, x_T.shape, steps=20, x_T=x_T, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_ancestral_sampler_keeps_the_chain_when_asked(nb):
    s = nb.make_schedule("linear", 100)
    x0, chain = nb.p_sample_loop(s, gaussian_oracle(s, MU, STD), (3, 1, 2, 2), keep_every=25)
    assert [t for t, _ in chain] == [100, 75, 50, 25, 0]
    assert torch.equal(chain[-1][1], x0)


def test_ddim_with_a_single_step_starts_from_pure_noise(nb):
    """One DDIM step from x_T returns the oracle's E[x_0 | x_T], close to the data mean, not the noise itself."""
    s = nb.make_schedule("linear", 1000)
    x = nb.ddim_sample(s, gaussian_oracle(s, MU, STD), (N, 1, 1, 1), steps=1, clip_sample=False,
                       generator=torch.Generator().manual_seed(10))
    assert abs(x.mean().item() - MU) < 0.01 and x.std().item() < 0.05


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(steps=1001), dict(eta=1.5), dict(eta=-0.1)])
def test_ddim_refuses_impossible_settings(nb, kwargs):
    s = nb.make_schedule("linear", 1000)
    with pytest.raises(ValueError, match="is not allowed"):
        nb.ddim_sample(s, gaussian_oracle(s, MU, STD), (2, 1, 1, 1), **kwargs)
