"""The memorisation check: an exact test of how many samples lie nearer the training set than held-out images do."""
import math

import torch


def test_counts_like_test_images_are_called_chance_about_as_often_as_the_level_says(nb):
    """Samples drawn like the test images: P < 0.05 in at most about 5% of trials (exact, so not more, up to the
    trials' own noise), and the mean count near its expectation n r / (m + 1)."""
    g = torch.Generator().manual_seed(0)
    trials, n, m, rejected, counts = 400, 500, 500, 0, []
    for _ in range(trials):
        result = nb.memorisation_test(torch.rand(n, generator=g), torch.rand(m, generator=g))
        rejected += result["p_value"] < 0.05
        counts.append(result["count"])
    assert result["rank"] == 5 and result["expected"] == 500 * 5 / 501
    assert rejected / trials <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / trials), rejected
    assert abs(sum(counts) / trials - result["expected"]) < 0.5


def test_ten_percent_copies_are_found_and_read_as_more_than_chance(nb):
    g = torch.Generator().manual_seed(1)
    samples = torch.rand(500, generator=g)
    samples[:50] = 0.0                                                     # 10% exact copies: distance 0
    result = nb.memorisation_test(samples, torch.rand(500, generator=g))
    assert result["count"] >= 50 and result["p_value"] < 1e-6 and nb.memorisation_code(result) == 1


def test_samples_far_from_the_training_set_are_read_as_fewer_than_chance(nb):
    g = torch.Generator().manual_seed(2)
    result = nb.memorisation_test(0.5 + torch.rand(500, generator=g), torch.rand(10_000, generator=g))
    assert result["count"] == 0 and result["p_value"] < 0.05 and nb.memorisation_code(result) == 2


def test_the_p_value_is_the_exact_beta_binomial_tail(nb):
    """n = 2, m = 1, r = 1: the count of 2 uniforms below one uniform is 0, 1 or 2 with chance 1/3 each."""
    result = nb.memorisation_test(torch.tensor([0.1, 0.2]), torch.tensor([0.5]), quantile=1.0)
    assert result["count"] == 2 and abs(result["p_value"] - 1.0) < 1e-9          # every count is as likely
    result = nb.memorisation_test(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.9]), quantile=0.5)
    # n = 3, m = 2, r = 1: P(K = k) = C(3, k) B(k + 1, 5 - k) / B(1, 2) = 0.4, 0.3, 0.2, 0.1 for k = 0..3
    assert result["count"] == 3 and abs(result["p_value"] - 0.1) < 1e-9


def test_memorisation_text_gives_the_count_its_chance_level_and_p(nb):
    text = nb.memorisation_text(dict(count=0, n=500, label="ancestral", quantile=0.01, test_n=500, expected=4.99,
                                     p_value=0.0123))
    assert "0 of 500 ancestral samples" in text and "4.99" not in text and "5.0 expected" in text and "P = 0.012" in text
    assert "to 0" not in text
