"""The whole notebook, top to bottom, in the smoke profile (papermill), and the committed file's hygiene."""
import json

import papermill
import pytest

from conftest import NOTEBOOK, ROOT, notebook_cells

FIGURES = ["data_grid", "schedules", "forward_process", "loss_curve", "samples_ancestral", "reverse_chain",
           "raw_vs_ema", "vlb_terms", "fid_vs_steps", "samplers_side_by_side", "nearest_neighbours",
           "schedule_ablation"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    papermill.execute_notebook(
        str(NOTEBOOK), str(out / "executed.ipynb"), cwd=str(ROOT), progress_bar=False,
        parameters=dict(PROFILE="smoke", OUT_DIR=str(out / "figures"), REPORT_DIR=str(out / "report"),
                        CKPT_PATH=str(out / "ckpt.pt"), DATA_DIR=str(ROOT / "data")))
    return out


def test_smoke_run_writes_every_figure_as_pdf_and_png(smoke_run):
    for name in FIGURES:
        for ext in ("pdf", "png"):
            path = smoke_run / "figures" / f"{name}.{ext}"
            assert path.stat().st_size > 1000, path


def test_smoke_run_records_its_configuration_device_and_timings(smoke_run):
    results = json.loads((smoke_run / "figures" / "results.json").read_text())
    assert results["config"]["profile"] == "smoke" and results["device"] and results["torch_version"]
    assert results["train"]["steps_done"] == results["config"]["train_steps"]
    assert results["train"]["final_loss"] > 0 and results["model"]["parameters"] > 0
    assert {"data", "probe", "train", "total"} <= results["timings"].keys()
    assert results["forecast"].keys() <= results["timings"].keys()            # forecast and actual, phase by phase
    assert set(results["forecast"]) - {"total"} == set(results["timings"]) - {"data", "probe", "total"}
    assert all(s >= 0 for s in results["forecast"].values()) and results["forecast"]["total"] > 0
    assert results["precision"]["autocast"] == "fp32"                       # the CPU: no autocast
    assert "ddim_50_eta1" in results["samplers"] and results["samplers"]["ddim_50_eta1"]["eta"] == 1.0
    assert results["fid"]["smoke_only"] is True
    assert all(r["seconds_per_1000"] > 0 for r in results["samplers"].values())
    assert (smoke_run / "report" / "results.tex").read_text().count("\\newcommand") > 50
    assert (smoke_run / "figures" / "overleaf.zip").stat().st_size > 1000
    assert set(results["comparisons"]) == {"Best", "AncDDIM", "Eta", "DDIMSteps", "Clip", "Floor", "Schedule"}
    assert all(c["low"] <= c["high"] and c["gap"] == pytest.approx(c["fid_a"] - c["fid_b"])
               for c in results["comparisons"].values())
    assert all({"fid", "low", "high"} <= f.keys() for f in results["fid"]["floor"].values())
    memo = results["memorisation"]
    assert {"count", "expected", "p_value", "n", "test_n", "sampler"} <= memo.keys() and 0 < memo["p_value"] <= 1
    assert memo["sampler"] == results["best"]["name"] == results["best"]["names"][0]   # on the lowest-scoring sampler
    assert 0 <= results["real_white_share"] <= 1 and all(0 <= r["white_share"] <= 1 for r in results["samplers"].values())


def outputs_text(cells):
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for c in cells if c["cell_type"] == "code" for o in c["outputs"])


def test_smoke_run_outputs_show_no_machine_paths_or_library_warnings(smoke_run):
    printed = outputs_text(json.loads((smoke_run / "executed.ipynb").read_text())["cells"])
    for unwanted in ("site-packages", "Warning", "/usr/", "/root/"):
        assert unwanted not in printed, unwanted


def test_smoke_run_prints_its_configuration_in_a_few_short_lines(smoke_run):
    cells = json.loads((smoke_run / "executed.ipynb").read_text())["cells"]
    config = next(outputs_text([c]) for c in cells if c["cell_type"] == "code" and "resolve_config(globals())"
                  in "".join(c["source"]))
    assert config.startswith("run ") and len(config.splitlines()) <= 3
    assert all(len(line) <= 200 for line in config.splitlines())


def test_smoke_run_prints_its_forecast_before_training(smoke_run):
    cells = json.loads((smoke_run / "executed.ipynb").read_text())["cells"]
    text = ["".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    forecast = next(i for i, t in enumerate(text) if "Forecast on" in t)
    trained = next(i for i, t in enumerate(text) if "images/s" in t and "min of training" in t)
    assert forecast < trained and "whole notebook" in text[forecast]


def test_rerunning_resumes_from_the_finished_checkpoint(smoke_run, tmp_path):
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "again.ipynb"), cwd=str(ROOT), progress_bar=False,
        parameters=dict(PROFILE="smoke", OUT_DIR=str(tmp_path), REPORT_DIR=None, FID_N=0, ABLATION_STEPS=0,
                        CKPT_PATH=str(smoke_run / "ckpt.pt"), DATA_DIR=str(ROOT / "data")))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["train"]["resumed"] is True and results["train"]["steps_this_run"] == 0


def test_committed_notebook_is_the_executed_reference_run_with_every_output():
    """A marker opens the notebook and sees every plot and number of the run that wrote figures/ and the report."""
    results = json.loads((ROOT / "figures" / "results.json").read_text())
    code = [c for c in notebook_cells() if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "the committed notebook was not run top to bottom"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert sum(o.get("data", {}).get("image/png") is not None for c in code for o in c["outputs"]) >= len(FIGURES) - 1
    printed = "".join("".join(o.get("text", "")) for c in code for o in c["outputs"])
    assert f"run {results['run_id']}" in printed, "the stored outputs come from another run than figures/results.json"
    for unwanted in ("site-packages", "Warning"):                         # no machine paths, no library warnings
        assert unwanted not in outputs_text(code), unwanted


def test_committed_notebook_shows_the_ddpm_and_folds_the_toolbox():
    """The toolbox cells are folded and introduced by one line of markdown; the DDPM cells are open, and the
    schedule comes within the first 120 visible code lines."""
    cells = notebook_cells()
    code = [c for c in cells if c["cell_type"] == "code"]
    hidden = lambda c: c["metadata"].get("jupyter", {}).get("source_hidden", False)
    lines = lambda c: sum(1 for line in "".join(c["source"]).splitlines() if line.strip())
    toolbox = [c for c in code if "toolbox" in c["metadata"].get("tags", [])]
    assert toolbox and all(hidden(c) for c in toolbox) and not any(hidden(c) for c in code if c not in toolbox)
    assert all("".join(c["source"]).startswith("# Toolbox: ") for c in toolbox)
    for i, c in enumerate(cells):                       # each run of toolbox cells follows a markdown introduction
        if c in toolbox and cells[i - 1]["cell_type"] == "markdown":
            assert "Toolbox" in "".join(cells[i - 1]["source"])
    visible = [c for c in code if not hidden(c)]
    before = next(sum(lines(v) for v in visible[:k]) for k, c in enumerate(visible)
                  if "def linear_beta_schedule" in "".join(c["source"]))
    assert before <= 120 and sum(lines(c) for c in visible) < 650
    assert sum(lines(c) for c in toolbox) <= 825         # the harness, FID statistics included


def test_figures_and_report_numbers_come_from_the_same_run_as_results_json():
    run_id = json.loads((ROOT / "figures" / "results.json").read_text())["run_id"]
    assert f"\\newcommand{{\\ResRunId}}{{{run_id}}}" in (ROOT / "report" / "results.tex").read_text()
    for path in sorted((ROOT / "figures").glob("*.p[dn][fg]")):
        assert f"run {run_id}".encode() in path.read_bytes(), f"{path.name} was written by another run"


def test_notebook_imports_nothing_from_this_repository():
    source = "\n".join("".join(c["source"]) for c in notebook_cells() if c["cell_type"] == "code")
    assert "sys.path" not in source and "from tests" not in source and "import conftest" not in source


def test_tidy_outputs_keeps_what_a_terminal_shows_of_progress_bars():
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    from tidy_outputs import final_text, tidy
    assert final_text("train:  50%\rtrain: 100%\n") == "train: 100%\n"
    nested = "\router 0/2" + "\n\rinner 1/5\x1b[A" + "\n\rinner 5/5\x1b[A" + "\router 2/2\n"   # as tqdm writes them
    assert final_text(nested) == "outer 2/2\ninner 5/5\n"
    merged = tidy([{"output_type": "stream", "name": "stderr", "text": ["a 1\r"]},
                   {"output_type": "stream", "name": "stderr", "text": ["a 2\n"]},
                   {"output_type": "stream", "name": "stdout", "text": ["x\n"]}])
    assert merged == [{"output_type": "stream", "name": "stderr", "text": ["a 2\n"]},
                      {"output_type": "stream", "name": "stdout", "text": ["x\n"]}]
