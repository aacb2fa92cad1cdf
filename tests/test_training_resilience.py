"""Training survives kills, resumes exactly, refuses foreign checkpoints, stops on NaN and on its budget."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

RUN = dict(model="tiny", T=100)   # stands in for the notebook's run_config
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (64, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def fresh_state(nb, seed=0):
    torch.manual_seed(seed)     # a cosine decay over the 12 steps of the resume test: its learning rate resumes too
    return nb.make_train_state(nb.UNet(1, 8, (1, 2), 1), 1e-3, 3, 0.9, CPU, decay="cosine", total_steps=12)


def run(nb, state, images, steps, ckpt, **kw):
    return nb.train(state, nb.make_schedule("linear", 100), images, steps=steps, batch_size=8, seed=0,
                    log_every=2, ckpt_path=ckpt, ckpt_every=4, run_config=RUN, **kw)


def test_resumed_training_is_bitwise_identical_to_uninterrupted_training(nb, images, tmp_path):
    # 12 steps of batch 8 over 64 images cross an epoch boundary (8 steps per epoch)
    nb.seed_everything(0)
    whole = fresh_state(nb)
    run(nb, whole, images, 12, tmp_path / "whole.pt")

    nb.seed_everything(0)
    first_half = fresh_state(nb)
    run(nb, first_half, images, 6, tmp_path / "split.pt")
    nb.seed_everything(999)                                  # a new kernel: other RNG states, other weights
    resumed = fresh_state(nb, seed=999)
    nb.load_checkpoint(tmp_path / "split.pt", resumed, RUN)
    assert resumed.step == 6
    run(nb, resumed, images, 12, tmp_path / "split.pt")

    for name in ("model", "ema"):
        a, b = getattr(whole, name).state_dict(), getattr(resumed, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after resume"
    assert whole.losses == resumed.losses
    assert whole.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"] == pytest.approx(5e-5)


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_the_learning_rate_warms_up_then_decays_to_its_floor_at_the_last_step(nb, decay):
    factors = [nb.lr_factor(step, 10, 110, decay) for step in range(120)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))     # never rises after the warm-up
    assert factors[60] == pytest.approx(0.525)                          # half-way: half-way to the floor, both shapes
    assert factors[110:] == pytest.approx([0.05] * 10)                   # the floor from total_steps on
    assert [nb.lr_factor(s, 10, 110, "none") for s in (10, 60, 119)] == [1.0, 1.0, 1.0]
    assert nb.lr_factor(500, 10, None, decay) == 1.0                     # no planned length: no decay


def test_resume_with_a_differently_shaped_model_is_refused(nb, images, tmp_path):
    state = fresh_state(nb)
    run(nb, state, images, 4, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match=r"belongs to another run.*'T': \(100, 1000\)"):
        nb.load_checkpoint(tmp_path / "ckpt.pt", fresh_state(nb), dict(RUN, T=1000))


def test_a_nan_loss_stops_training_with_the_step_and_the_last_finite_loss(nb, images, tmp_path):
    class PoisonedAfter(torch.nn.Module):                    # returns NaN from its 8th call on
        def __init__(self, model, calls):
            super().__init__()
            self.model, self.calls = model, calls

        def forward(self, x, t):
            self.calls -= 1
            out = self.model(x, t)
            return out * float("nan") if self.calls < 0 else out

    torch.manual_seed(0)
    state = nb.make_train_state(PoisonedAfter(nb.UNet(1, 8, (1, 2), 1), 7), 1e-3, 3, 0.9, CPU)
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 8; last finite loss 0\.\d+"):
        run(nb, state, images, 20, tmp_path / "ckpt.pt")
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["step"] == 4   # the last good checkpoint survives
    assert len(state.losses) == 6                                              # nothing after the NaN was logged


def test_a_batch_larger_than_the_training_set_is_refused(nb, images):
    with pytest.raises(ValueError, match="batch_size=65 is not allowed"):
        nb.train(fresh_state(nb), nb.make_schedule("linear", 100), images, steps=1, batch_size=65, seed=0)


def test_the_time_budget_stops_training_with_a_checkpoint(nb, images, tmp_path):
    state = fresh_state(nb)
    stopped = run(nb, state, images, 100_000, tmp_path / "ckpt.pt", minutes=0.02)
    assert stopped and 0 < state.step < 100_000
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert saved["step"] == state.step and 0 < saved["seconds"] < 60


KILLED_WRITER = """
import sys, torch
sys.path.insert(0, {tests!r})
from conftest import load_defs
nb = load_defs()
torch.manual_seed(0)
state = nb.make_train_state(nb.UNet(1, 8, (1, 2), 1), 1e-3, 3, 0.9, torch.device("cpu"))
images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
nb.train(state, nb.make_schedule("linear", 100), images, steps=10**9, batch_size=8, seed=0,
         log_every=1, ckpt_path={ckpt!r}, ckpt_every=1, run_config={{}})
"""


def test_a_checkpoint_is_readable_after_the_writer_is_killed_mid_run(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), ckpt=str(ckpt))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ckpt.exists(), "the writer never produced a checkpoint"
        time.sleep(1.0)                                      # it is now checkpointing at every step
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = torch.load(ckpt, weights_only=False)
    assert saved["step"] >= 1 and len(saved["losses"]) == saved["step"]
    assert not [p for p in tmp_path.iterdir() if p.name != "ckpt.pt" and not p.name.endswith(".tmp")]
