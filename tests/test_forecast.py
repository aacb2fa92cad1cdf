"""The run-time forecast: the work counted per phase, the arithmetic on probed speeds, RUN_MINUTES, and the work a
smoke run really does, counted at the networks, against what its forecast said it would do."""
import copy
import json
import platform
from collections import Counter
from fnmatch import fnmatch

import matplotlib
import numpy as np
import papermill
import pytest
import torch

from conftest import NOTEBOOK, ROOT, default_parameters


def config(nb, profile, **changes):
    params = default_parameters()
    params.update(PROFILE=profile, DEVICE="cpu", OUT_DIR="/nonexistent/figures", REPORT_DIR=None,
                  CKPT_PATH="/nonexistent/ckpt.pt", **changes)
    return nb.resolve_config(params)


def curve_length(T):
    """How many distinct steps section 7's log-spaced curve visits (counted with numpy, not the notebook)."""
    return len(np.unique(np.round(np.logspace(0, np.log10(T), 60))))


# Counted by hand from the notebook's cells and PROFILES. Units: "train" images through a training step,
# "ancestral_step" and "ddim_step" images through one step of that sampler (autocast), "unet_fp32" images through a
# U-Net forward in full precision, "inception" images
# through the FID network, "frechet" FID scores, "interval" bootstrap intervals (fid_gap or fid_floor calls).
EXPECTED = {
    # T=100, 20 steps x 16; ancestral on max(N_SAMPLES 8, ANCESTRAL_N 4) = 8 images, each DDIM setting on
    # max(FID_N 4, min(8, N_SAMPLES)) = 8; bound on 8 images x (2 draws + L_0); FID on 4, reference 8;
    # floor sizes {ANCESTRAL_N, FID_N, ablation N} = {4}; ablation 4 steps x 16, DDIM-50 on 4 images
    "smoke": {
        "train": {"train": 20 * 16}, "ancestral": {"ancestral_step": 8 * 100}, "ddim_10": {"ddim_step": 8 * 10},
        "ddim_50": {"ddim_step": 8 * 50}, "ddim_50_eta1": {"ddim_step": 8 * 50}, "ddim_50_noclip": {"ddim_step": 8 * 50},
        "figures": {"unet_fp32": 2 * 100 + 2 * 8 + 2 * 8 * 50},  # reverse chain of 2 images, x_0 under 8 of its frames; raw and EMA DDIM-50 on 8
        "vlb": {"unet_fp32": 8 * (2 + 1) + 8 * curve_length(100)},  # the bound; the curve on min(16, 8) images
        "fid_reference": {"inception": 8},
        "fid_floor": {"inception": 2 * 4, "interval": 1},         # two disjoint real sets of 4, one bootstrap
        "fid_scores": {"inception": 4 + 4 * 4, "frechet": 5},     # ancestral on 4, four DDIM settings on 4
        "fid_intervals": {"interval": 4 + 5},                      # Best (vs 4 others), AncDDIM, Eta, DDIMSteps, Clip, Floor
        "ablation": {"train": 2 * 4 * 16, "ddim_step": 2 * 4 * 50, "inception": 2 * 4, "frechet": 2, "interval": 1}},
    # T=1000, 8000 steps x 128; ancestral on 2000, DDIM (10, 20, 50, 100, eta 1, no clip) on 10000; bound on 10000
    # images x (4 draws + L_0); floor sizes {2000, 10000, 5000}; ablation 2000 steps, DDIM-50 on 5000
    "full": {
        "train": {"train": 8000 * 128}, "ancestral": {"ancestral_step": 2000 * 1000}, "ddim_10": {"ddim_step": 10_000 * 10},
        "ddim_20": {"ddim_step": 10_000 * 20}, "ddim_50": {"ddim_step": 10_000 * 50}, "ddim_100": {"ddim_step": 10_000 * 100},
        "ddim_50_eta1": {"ddim_step": 10_000 * 50}, "ddim_50_noclip": {"ddim_step": 10_000 * 50},
        "figures": {"unet_fp32": 2 * 1000 + 2 * 8 + 2 * 16 * 50},
        "vlb": {"unet_fp32": 10_000 * (4 + 1) + 16 * curve_length(1000)},
        "fid_reference": {"inception": 10_000},
        "fid_floor": {"inception": 2 * (2000 + 5000 + 10_000), "interval": 3},
        "fid_scores": {"inception": 2000 + 6 * 10_000, "frechet": 7},   # AncDDIM reuses DDIM-50's first 2000
        "fid_intervals": {"interval": 6 + 5},                     # Best (vs 6 others) and five more
        "ablation": {"train": 2 * 2000 * 128, "ddim_step": 2 * 5000 * 50, "inception": 2 * 5000, "frechet": 2,
                     "interval": 1}},
}
FID_UNITS = ("inception", "frechet", "interval")


def nonzero(work):
    return {unit: n for unit, n in work.items() if n}


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_work_per_phase_matches_a_count_by_hand(nb, profile):
    plan = nb.work_plan(config(nb, profile))
    assert list(plan) == list(EXPECTED[profile])
    for phase, work in plan.items():
        assert nonzero(work) == EXPECTED[profile][phase], phase


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_a_cached_reference_forecasts_no_reference_work_and_changes_nothing_else(nb, profile):
    cfg = config(nb, profile)
    fresh, cached = nb.work_plan(cfg), nb.work_plan(cfg, reference_cached=True)
    assert nonzero(fresh["fid_reference"]) and not nonzero(cached["fid_reference"])
    assert {p: w for p, w in cached.items() if p != "fid_reference"} == \
           {p: w for p, w in fresh.items() if p != "fid_reference"}


def test_without_fid_no_phase_counts_fid_work_and_sampling_is_unchanged(nb):
    cfg = config(nb, "full")
    with_fid, without = nb.work_plan(cfg), nb.work_plan(cfg, fid=False)
    assert all(work.get(unit, 0) == 0 for work in without.values() for unit in FID_UNITS)
    assert {p: {u: n for u, n in w.items() if u not in FID_UNITS} for p, w in without.items()} == \
           {p: {u: n for u, n in w.items() if u not in FID_UNITS} for p, w in with_fid.items()}


def test_fid_n_zero_forecasts_no_fid_work_even_with_a_network(nb):
    plan = nb.work_plan(config(nb, "full", FID_N=0), fid=True)
    assert all(work.get(unit, 0) == 0 for work in plan.values() for unit in FID_UNITS)
    assert plan["ablation"]["ddim_step"] > 0                           # the ablation still samples, unscored


def test_a_resume_forecasts_only_the_steps_left_and_never_negative_training(nb):
    cfg = config(nb, "full")
    assert nb.work_plan(cfg, steps_done=cfg.train_steps - 3)["train"] == {"train": 3 * cfg.batch_size}
    for done in (cfg.train_steps, cfg.train_steps + 500):
        plan = nb.work_plan(cfg, steps_done=done)
        assert plan["train"]["train"] == 0, done
        assert plan["ablation"]["train"] == 2 * cfg.ablation_steps * cfg.batch_size   # ablation trains from scratch


# Seconds per image / per call; the units differ from each other so that charging a phase at the wrong one shows.
SPEED = {"train": 0.002, "ancestral_step": 1e-4, "ddim_step": 1.5e-4, "unet_fp32": 3e-4, "inception": 5e-3, "frechet": 3.0, "interval": 40.0}


def test_forecast_is_work_times_speed(nb):
    plan = nb.work_plan(config(nb, "full"))
    forecast = nb.forecast_seconds(plan, SPEED)
    assert forecast["train"] == pytest.approx(8000 * 128 * 0.002)
    assert forecast["ancestral"] == pytest.approx(2000 * 1000 * 1e-4)
    assert forecast["figures"] == pytest.approx((2000 + 16 + 1600) * 3e-4)
    assert forecast["vlb"] == pytest.approx((50_000 + 16 * curve_length(1000)) * 3e-4)
    assert forecast["fid_floor"] == pytest.approx(34_000 * 5e-3 + 3 * 40.0)
    assert forecast["fid_scores"] == pytest.approx(62_000 * 5e-3 + 7 * 3.0)
    assert forecast["fid_intervals"] == pytest.approx(11 * 40.0)
    assert forecast["ablation"] == pytest.approx(512_000 * 0.002 + 500_000 * 1.5e-4 + 10_000 * 5e-3 + 2 * 3.0 + 40.0)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="keep_freed_memory sets a glibc malloc option")
def test_freed_memory_is_kept_under_glibc(nb):
    assert nb.keep_freed_memory() is True


def test_without_glibc_keeping_freed_memory_is_a_quiet_no_op(nb, monkeypatch):
    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")
    monkeypatch.setattr(nb.ctypes, "CDLL", no_libc)
    assert nb.keep_freed_memory() is False


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


# --- The work a smoke run really does, counted at the networks ------------------------------------------------
# Each run cell after the forecast, found by a phrase only it holds: the phases it carries out (patterns over the
# plan's phase names) and the unit its U-Net forwards count in (sampling under autocast: "ancestral_step" or "ddim_step"; the figures and
# the bound in full precision: "unet_fp32"). Cells sharing a phase tuple are added up before comparing.
CELL_PHASES = {
    "budget_stopped = train(": (("train",), None),
    'samples["ancestral"], sample_seconds["ancestral"] = timed(': (("ancestral",), "ancestral_step"),
    "keep_every=1": (("figures",), "unet_fp32"),               # the reverse chain
    "raw_vs_ema, seconds = timed(": (("figures",), "unet_fp32"),
    "estimate_vlb(schedule, ema_model": (("vlb",), "unet_fp32"),
    'reference, timings["fid_reference"] = timed(': (("fid_reference", "fid_floor"), None),
    "SAMPLERS = sampler_table(cfg)": (("ddim_*", "fid_scores"), "ddim_step"),       # ancestral was drawn above
    "comparison_results, t0 = {}": (("fid_intervals",), None),
    "ablation, gap = schedule_ablation()": (("ablation",), "ddim_step"),
}


def install_counters(ns, counts):
    """Count, in the notebook's namespace `ns`, the images through a training step, through the U-Net outside
    training, through the FID network, and the calls of frechet_distance, fid_gap and fid_floor."""
    training, batches = [], []

    def p_losses(schedule, model, x0, _inner=ns["p_losses"]):
        training.append(True); batches.append(x0.shape[0])
        try:
            return _inner(schedule, model, x0)
        finally:
            training.pop()

    def gradient_step(state, loss, _inner=ns["gradient_step"]):
        counts["train"] += batches.pop()                       # the batch of the loss just computed
        return _inner(state, loss)

    unet_forward = ns["UNet"].forward

    def forward(self, x, t):
        if not training:                                       # training's forwards count as "train"
            counts["unet_forward"] += x.shape[0]
        return unet_forward(self, x, t)

    def calls(name, unit):
        inner = ns[name]

        def wrapper(*args, **kwargs):
            counts[unit] += 1
            return inner(*args, **kwargs)
        ns[name] = wrapper

    ns.update(p_losses=p_losses, gradient_step=gradient_step)
    ns["UNet"].forward = forward                               # this namespace's own class: the test's copy only
    if ns["fid_net"] is not None:
        ns["fid_net"].register_forward_hook(lambda module, inputs, output: counts.update(inception=inputs[0].shape[0]))
    calls("frechet_distance", "frechet")
    calls("fid_gap", "interval")
    calls("fid_floor", "interval")


@pytest.fixture(scope="module")
def smoke_counts(tmp_path_factory):
    """Run the notebook's code cells in order in one namespace (as a kernel would) in the smoke profile, count the
    work of each cell after the forecast, and add it up by CELL_PHASES. The probe, inside the forecast cell,
    runs before the counters."""
    tmp = tmp_path_factory.mktemp("forecast_run")
    (tmp / "data").mkdir()                                     # a fresh FID reference cache beside the dataset
    (tmp / "data" / "FashionMNIST").symlink_to(ROOT / "data" / "FashionMNIST", target_is_directory=True)
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    backend, threads = matplotlib.get_backend(), torch.get_num_threads()
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    torch.set_num_threads(1)                # the cores are shared; the counts do not depend on the speed
    ns, counts, measured, unplanned, matched = {"__name__": "notebook_run"}, Counter(), {}, {}, Counter()
    counting = False
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(plt, "show", lambda *args, **kwargs: None)
            for i, cell in enumerate(cells):
                source, tags = "".join(cell["source"]), cell["metadata"].get("tags", [])
                before = Counter(counts)
                exec(compile(source, f"{NOTEBOOK.name}[code cell {i}]", "exec"), ns)
                plt.close("all")
                if "parameters" in tags:
                    ns.update(PROFILE="smoke", OUT_DIR=str(tmp / "figures"), REPORT_DIR=None,
                              CKPT_PATH=str(tmp / "ckpt.pt"), DATA_DIR=str(tmp / "data"))
                if not counting:
                    if "print_forecast(" in source and "defs" not in tags:
                        install_counters(ns, counts)
                        counting = True
                    continue
                work = counts - before
                keys = [key for key in CELL_PHASES if key in source]
                assert len(keys) <= 1, f"code cell {i} matches {keys}"
                if not keys:
                    if work:
                        unplanned[f"code cell {i}: {source.splitlines()[0]}"] = dict(work)
                    continue
                matched[keys[0]] += 1
                phases, unet_unit = CELL_PHASES[keys[0]]
                if work["unet_forward"]:
                    work[unet_unit or "unet forwards where the plan has none"] += work.pop("unet_forward")
                measured.setdefault(phases, Counter()).update(work)
    finally:
        torch.set_num_threads(threads)
        matplotlib.use(backend)
    assert counting, "no forecast cell (a code cell calling print_forecast) was found"
    assert all(matched[key] == 1 for key in CELL_PHASES), {key: matched[key] for key in CELL_PHASES}
    return dict(ns=ns, measured={phases: nonzero(work) for phases, work in measured.items()}, unplanned=unplanned)


def mismatches(measured, plan):
    """{phases: (counted, planned)} for each group of phases whose counted work differs from the plan's sum,
    and for any planned phase no counted cell carries out."""
    out = {}
    for phases, work in measured.items():
        planned = Counter()
        for phase in (p for p in plan if any(fnmatch(p, pattern) for pattern in phases)):
            planned.update(plan[phase])
        if work != nonzero(planned):
            out[phases] = (work, nonzero(planned))
    orphans = [p for p in plan if nonzero(plan[p]) and not any(fnmatch(p, pat) for phs in measured for pat in phs)]
    if orphans:
        out[tuple(orphans)] = ({}, {p: plan[p] for p in orphans})
    return out


def test_a_smoke_run_does_exactly_the_work_its_forecast_counted(nb, smoke_counts):
    ns = smoke_counts["ns"]
    assert not smoke_counts["unplanned"]                                     # no cell outside CELL_PHASES works
    assert mismatches(smoke_counts["measured"], ns["plan"]) == {}
    # what the notebook forecast is work_plan's count for a fresh run with an uncached reference
    fid = ns["fid_net"] is not None
    assert ns["plan"] == nb.work_plan(ns["cfg"], fid=fid, reference_cached=False, steps_done=0)
    assert ns["plan"] == ns["work_plan"](ns["cfg"], fid=fid, reference_cached=False, steps_done=0)
    if fid:                                                                  # FID ran: its work was counted too
        assert smoke_counts["measured"][("fid_reference", "fid_floor")]["inception"] > 0


def test_the_smoke_run_count_notices_a_wrong_forecast(smoke_counts):
    plan, cfg = smoke_counts["ns"]["plan"], smoke_counts["ns"]["cfg"]
    wrong = copy.deepcopy(plan)
    wrong["figures"]["unet_fp32"] += cfg.T                                   # one reverse chain too many
    assert set(mismatches(smoke_counts["measured"], wrong)) == {("figures",)}
    wrong = copy.deepcopy(plan)
    wrong["vlb"] = {"ddim_step": wrong["vlb"].pop("unet_fp32")}                    # the bound charged at autocast speed
    assert set(mismatches(smoke_counts["measured"], wrong)) == {("vlb",)}
    wrong = copy.deepcopy(plan)
    wrong["fid_intervals"]["interval"] -= 1                                  # a comparison forgotten
    assert set(mismatches(smoke_counts["measured"], wrong)) == {("fid_intervals",)}
    wrong = copy.deepcopy(plan)
    wrong["ddim_20"] = {"ddim_step": 8 * 20}                                      # a sampler that never runs
    assert set(mismatches(smoke_counts["measured"], wrong)) == {("ddim_*", "fid_scores")}
