"""The U-Net's contract, the loss, and the parameter checks."""
import pytest
import torch

from conftest import default_parameters


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 32), (3, 28)])
def test_unet_returns_noise_shaped_like_its_input(nb, channels, size):
    model = nb.UNet(channels, base_channels=16, channel_mults=(1, 2, 2), num_res_blocks=1)
    x = torch.randn(3, channels, size, size)
    out = model(x, torch.tensor([0, 500, 999]))
    assert out.shape == x.shape


def test_unet_output_is_zero_at_initialisation_so_the_loss_starts_at_one(nb):
    model = nb.UNet(1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1)
    assert (model(torch.randn(2, 1, 28, 28), torch.tensor([3, 7])) == 0).all()
    torch.manual_seed(0)
    loss = nb.p_losses(nb.make_schedule("linear", 1000), model, torch.zeros(512, 1, 8, 8))
    assert loss.item() == pytest.approx(1.0, abs=0.02)


def test_unet_depends_on_the_timestep(nb):
    torch.manual_seed(0)
    model = nb.UNet(1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1)
    torch.nn.init.normal_(model.out[-1].weight)                          # make the output non-zero
    x = torch.randn(1, 1, 16, 16).repeat(2, 1, 1, 1)
    out = model(x, torch.tensor([10, 900]))
    assert not torch.allclose(out[0], out[1])


def test_training_on_a_small_fixed_batch_reduces_the_loss(nb):
    torch.manual_seed(0)
    images = torch.zeros(16, 1, 8, 8, dtype=torch.uint8)
    images[::2, :, :, :4] = 255                                           # two kinds of image: half white left or right
    images[1::2, :, :, 4:] = 255
    state = nb.make_train_state(nb.UNet(1, 16, (1, 2), 1), 2e-3, 10, 0.99, torch.device("cpu"))
    nb.train(state, nb.make_schedule("linear", 1000), images, steps=300, batch_size=16, seed=0, log_every=50)
    first, last = sum(state.losses[:30]) / 30, sum(state.losses[-30:]) / 30
    assert last < 0.5 * first, (first, last)


def test_mixed_precision_is_full_precision_on_the_cpu_unless_forced(nb):
    cpu = torch.device("cpu")
    assert nb.autocast_dtype(cpu) is None and nb.autocast_dtype(cpu, "fp32") is None
    assert nb.autocast_dtype(cpu, "fp16") == torch.float16 and nb.autocast_dtype(cpu, "bf16") == torch.bfloat16


@pytest.mark.parametrize("precision,scaled", [("fp16", True), ("bf16", False), ("fp32", False)])
def test_forced_precision_trains_with_a_grad_scaler_only_for_fp16(nb, precision, scaled):
    """The T4's path (fp16 autocast + grad scaler) on the CPU: the same training loop, unfused AdamW."""
    torch.manual_seed(0)
    state = nb.make_train_state(nb.UNet(1, 8, (1, 2), 1), 1e-3, 3, 0.9, torch.device("cpu"), precision)
    assert state.scaler.is_enabled() == (scaled and hasattr(torch.amp, "GradScaler"))  # CPU scaler: torch >= 2.3
    images = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
    nb.train(state, nb.make_schedule("linear", 100), images, steps=4, batch_size=8, seed=0, log_every=2)
    assert len(state.losses) == 4 and all(0 < v < 10 for v in state.losses)
    assert all(p.dtype == torch.float32 and p.isfinite().all() for p in state.model.parameters())


def test_default_parameters_are_valid(nb):
    cfg = nb.resolve_config(default_parameters())
    assert cfg.profile == ("full" if torch.cuda.is_available() else "cpu")
    assert cfg.T == 1000 and cfg.train_steps >= 1


@pytest.mark.parametrize("name,value", [
    ("PROFILE", "huge"), ("DEVICE", "tpu"), ("SEED", -1), ("SEED", 1.5), ("DATASET", "ImageNet"),
    ("SCHEDULE", "quadratic"), ("T", 1), ("TRAIN_STEPS", 0), ("TRAIN_MINUTES", -5), ("BATCH_SIZE", "64"),
    ("LR", 0), ("EMA_DECAY", 1.0), ("VARIANCE_TYPE", "learned"), ("CLIP_SAMPLE", "yes"), ("RESUME", 1),
    ("FID_N", 1), ("N_SAMPLES", 0), ("ABLATION_STEPS", -1), ("OUT_DIR", ""), ("REPORT_DIR", 3),
    ("MIXED_PRECISION", "fp8"), ("ANCESTRAL_N", 0),
])
def test_a_bad_parameter_raises_a_value_error_naming_it(nb, name, value):
    params = dict(default_parameters(), **{name: value})
    with pytest.raises(ValueError, match=rf"^{name}={value!r}".replace("(", r"\(").replace(")", r"\)")) as err:
        nb.resolve_config(params)
    assert "expected" in str(err.value)


def test_smoke_profile_refuses_to_write_over_the_committed_results(nb):
    params = dict(default_parameters(), PROFILE="smoke")                 # OUT_DIR still "figures"
    with pytest.raises(ValueError, match="OUT_DIR"):
        nb.resolve_config(params)
    params.update(OUT_DIR="/tmp/x", REPORT_DIR=None, CKPT_PATH="/tmp/x/ckpt.pt")
    assert nb.resolve_config(params).profile == "smoke"


def test_cuda_is_refused_clearly_without_a_gpu(nb):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="DEVICE='cuda'"):
        nb.resolve_config(dict(default_parameters(), DEVICE="cuda"))
