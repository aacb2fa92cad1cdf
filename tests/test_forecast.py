"""The run-time forecast: the work counted per phase, the arithmetic on probed speeds, RUN_MINUTES."""
import numpy as np
import papermill
import pytest

from conftest import NOTEBOOK, ROOT, default_parameters


def config(nb, profile):
    params = default_parameters()
    params.update(PROFILE=profile, DEVICE="cpu", OUT_DIR="/nonexistent/figures", REPORT_DIR=None,
                  CKPT_PATH="/nonexistent/ckpt.pt")
    return nb.resolve_config(params)


def curve_length(T):
    """How many distinct steps section 7's log-spaced curve visits (counted with numpy, not the notebook)."""
    return len(np.unique(np.round(np.logspace(0, np.log10(T), 60))))


# Counted by hand from the notebook's cells and PROFILES (images through each network; FID scores).
EXPECTED = {
    "smoke": {  # T=100, 20 steps x 16, 8 grid images, FID on 4, DDIM (10, 50), ablation 4 steps x 16 on 4 images
        "train": {"train": 320}, "ancestral": {"unet": 8 * 100}, "ddim_10": {"unet": 8 * 10},
        "ddim_50": {"unet": 8 * 50}, "ddim_50_eta1": {"unet": 8 * 50}, "ddim_50_noclip": {"unet": 8 * 50},
        "figures": {"unet": 4 * 100 + 2 * 8 * 50}, "vlb": {"unet": 8 * 3 + 8 * curve_length(100)},
        "fid_reference": {"inception": 8}, "fid_floor": {"inception": 2 * 4, "frechet": 2},
        "fid_scores": {"inception": 5 * 4, "frechet": 5},
        "ablation": {"train": 2 * 4 * 16, "unet": 2 * 4 * 50, "inception": 2 * 4, "frechet": 2}},
    "full": {   # T=1000, 8000 steps x 128, ancestral on 2000, DDIM (10, 20, 50, 100) on 10000, ablation 2000 steps
        "train": {"train": 8000 * 128}, "ancestral": {"unet": 2000 * 1000}, "ddim_10": {"unet": 10_000 * 10},
        "ddim_20": {"unet": 10_000 * 20}, "ddim_50": {"unet": 10_000 * 50}, "ddim_100": {"unet": 10_000 * 100},
        "ddim_50_eta1": {"unet": 10_000 * 50}, "ddim_50_noclip": {"unet": 10_000 * 50},
        "figures": {"unet": 4 * 1000 + 2 * 16 * 50}, "vlb": {"unet": 10_000 * 5 + 16 * curve_length(1000)},
        "fid_reference": {"inception": 10_000}, "fid_floor": {"inception": 2 * (2000 + 10_000 + 5000), "frechet": 6},
        "fid_scores": {"inception": 2000 + 6 * 10_000 + 2000, "frechet": 8},   # + DDIM-50 again at N = 2000
        "ablation": {"train": 2 * 2000 * 128, "unet": 2 * 5000 * 50, "inception": 2 * 5000, "frechet": 2}},
}


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_work_per_phase_matches_a_count_by_hand(nb, profile):
    plan = nb.work_plan(config(nb, profile))
    assert list(plan) == list(EXPECTED[profile])
    for phase, work in plan.items():
        assert {k: v for k, v in work.items() if v} == EXPECTED[profile][phase], phase


def test_without_fid_no_phase_counts_inception_work(nb):
    plan = nb.work_plan(config(nb, "full"), fid=False)
    assert all(work.get("inception", 0) == 0 and work.get("frechet", 0) == 0 for work in plan.values())


SPEED = {"train": 0.002, "unet": 1e-4, "inception": 5e-3, "frechet": 3.0}   # seconds per image / per score


def test_forecast_is_work_times_speed(nb):
    plan = nb.work_plan(config(nb, "full"))
    forecast = nb.forecast_seconds(plan, SPEED)
    assert forecast["train"] == pytest.approx(8000 * 128 * 0.002)
    assert forecast["ancestral"] == pytest.approx(2000 * 1000 * 1e-4)
    assert forecast["fid_floor"] == pytest.approx(34_000 * 5e-3 + 6 * 3.0)
    assert forecast["ablation"] == pytest.approx(512_000 * 0.002 + 500_000 * 1e-4 + 10_000 * 5e-3 + 2 * 3.0)


def test_run_minutes_trains_what_fits_once_the_evaluation_is_set_aside(nb):
    forecast = nb.forecast_seconds(nb.work_plan(config(nb, "full")), SPEED)
    evaluation = sum(s for phase, s in forecast.items() if phase != "train")
    step = 128 * SPEED["train"]                                              # 0.256 s per step
    minutes = (evaluation + 30 + 3000 * step + 0.1) / 60                      # room for 3,000 steps after 30 s
    assert nb.steps_that_fit(minutes, 30, forecast, step, 0, 8000) == 3000
    assert nb.steps_that_fit(minutes, 30, forecast, step, 500, 8000) == 3500  # resumed at step 500
    assert nb.steps_that_fit(10_000, 30, forecast, step, 0, 8000) == 8000     # never more than TRAIN_STEPS


def test_an_evaluation_that_cannot_fit_is_refused_naming_what_to_lower(nb):
    forecast = nb.forecast_seconds(nb.work_plan(config(nb, "full")), SPEED)
    with pytest.raises(ValueError, match=r"RUN_MINUTES=5 is too short.*lower .*ANCESTRAL_N") as err:
        nb.steps_that_fit(5, 30, forecast, 0.256, 0, 8000)
    assert "FID_N" in str(err.value) and "\n" not in str(err.value)


def test_a_run_budget_too_small_stops_before_training(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="RUN_MINUTES=0.05 is too short"):
        papermill.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"), cwd=str(ROOT), progress_bar=False,
            parameters=dict(PROFILE="smoke", RUN_MINUTES=0.05, OUT_DIR=str(tmp_path / "figures"), REPORT_DIR=None,
                            CKPT_PATH=str(tmp_path / "ckpt.pt"), DATA_DIR=str(ROOT / "data")))
    assert not (tmp_path / "ckpt.pt").exists()                               # no training step was taken
