"""bench/: the diffusers twin, the benchmark, the FLOP count, the notebook-to-script converter, the GPU-machine run."""
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import NOTEBOOK, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import bench_unet  # noqa: E402
import flops  # noqa: E402
import nb2script  # noqa: E402


def test_diffusers_twin_has_exactly_the_notebooks_parameters_and_computes_the_same_function(nb):
    pytest.importorskip("diffusers", reason="diffusers is not installed (pip install diffusers)")
    for name, profile in nb.PROFILES.items():
        eq = bench_unet.equivalence(nb, profile, have_diffusers=True)
        assert eq["params_notebook"] == eq["params_diffusers"], (name, eq)
        assert eq["diffusers_vs_notebook"] < 1e-4 * max(1.0, eq["output_scale"]), (name, eq)


def test_sdpa_attention_monkeypatch_matches_multihead_attention(nb):
    profile = nb.PROFILES["smoke"]
    torch.manual_seed(0)
    plain = bench_unet.build_unet(nb, profile).eval()
    torch.nn.init.normal_(plain.out[-1].weight, std=0.02)          # the output conv starts at zero
    patched = bench_unet.use_sdpa_attention(bench_unet.build_unet(nb, profile).eval(), nb)
    patched.load_state_dict(plain.state_dict())
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 10, profile["T"] - 1])
    with torch.no_grad():
        assert torch.allclose(patched(x, t), plain(x, t), atol=1e-5)
    assert bench_unet.build_unet(nb, profile).mid_attn.forward.__func__ is nb.SelfAttention.forward  # others untouched


def test_benchmark_smoke_run_measures_every_row_and_reports_a_failed_torch_compile_as_a_row(tmp_path, monkeypatch):
    pytest.importorskip("diffusers", reason="diffusers is not installed (pip install diffusers)")

    def broken_compile(model, **kwargs):                 # compiling for real takes minutes on a CPU
        def call(*args):
            raise RuntimeError("no C++ compiler")
        return call
    monkeypatch.setattr(bench_unet.torch, "compile", broken_compile)
    out = tmp_path / "bench.md"
    assert bench_unet.main(["--smoke", "--device", "cpu", "--profiles", "smoke", "--compile", "--out", str(out)]) == 0
    text, report = out.read_text(), json.loads(out.with_suffix(".json").read_text())
    entry = report["profiles"]["smoke"]
    assert entry["params_notebook"] == entry["params_diffusers"] > 0
    rows = {r["name"]: r for r in entry["rows"]}
    measured = ["notebook", "diffusers", "notebook + channels_last", "notebook + SDPA attention"]
    compiled = ["notebook + torch.compile", "diffusers + torch.compile", "notebook + all + compile"]
    assert set(rows) == set(measured + compiled)
    for name in measured:
        assert f"| {name} |" in text and not rows[name]["failed"], rows[name]
        assert rows[name]["results"]["train"]["windows"] and rows[name]["results"]["sample"]["windows"], name
    assert all("no C++ compiler" in rows[name]["failed"] for name in compiled)
    assert entry["summary"]["train"]["notebook_over_diffusers"] > 0
    assert entry["summary"]["sample"]["notebook_over_diffusers"] > 0


def test_flop_table_reports_every_phase_with_positive_totals_for_every_profile(nb, tmp_path, capsys):
    out = tmp_path / "flops.json"
    assert flops.main(["--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert "full" in report["profiles"] and set(report["profiles"]) == set(nb.PROFILES)
    assert "ASSUMPTION" in printed and report["inception_flops_per_image"] > 5e9   # Inception-v3: ~11.4 GFLOP
    for name, p in report["profiles"].items():
        phases = [row["phase"] for row in p["phases"]]
        assert phases == list(nb.work_plan(flops.profile_config(nb, name)))  # the notebook's own phases
        assert p["total_flops"] > 0 and p["total_pflop"] == pytest.approx(p["total_flops"] / 1e15)
        assert p["train_step_flops"] > 2 * p["forward_flops_per_image"] * nb.PROFILES[name]["batch_size"]  # + backward
        assert f"### profile `{name}`" in printed
    assert report["profiles"]["full"]["total_flops"] > report["profiles"]["smoke"]["total_flops"]


def test_flop_table_keeps_the_full_profiles_fid_intervals_within_10_percent_of_its_time_on_t4_and_h100(nb, tmp_path,
                                                                                                     capsys):
    out = tmp_path / "flops.json"
    assert flops.main(["--profiles", "full", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    stats, plan = report["profiles"]["full"]["statistics"], nb.work_plan(flops.profile_config(nb, "full"))
    with_statistics = [phase for phase, work in plan.items() if work.get("frechet") or work.get("interval")]
    assert [row["phase"] for row in stats["phases"]] == with_statistics
    for row in stats["phases"]:                                  # the notebook's own counts, each with a positive cost
        work = plan[row["phase"]]
        assert (row["scores"], row["intervals"]) == (work.get("frechet", 0), work.get("interval", 0))
        assert row["flop64"] > 0 and sum(row["eigh"].values()) > 0 and all(s > 0 for s in row["seconds"].values())
    assert set(stats["cards"]) == set(report["cards"]) == {"T4", "L4", "A100", "H100"}
    assert report["interval_share_limit"] == 0.10
    for card in ("T4", "H100"):
        c = stats["cards"][card]
        assert 0 < c["intervals_s"] < c["statistics_s"] < c["total_s"], c
        assert c["intervals_share"] == pytest.approx(c["intervals_s"] / c["total_s"]), c
        assert c["intervals_share"] <= 0.10, c
        assert f"| {card} |" in printed
    assert "intervals' share of the run" in printed and "ASSUMPTION" in printed


def test_flops_counted_on_the_meta_device_equal_a_real_cpu_step(nb):
    profile = nb.PROFILES["smoke"]
    assert flops.unet_flops(nb, profile, "meta") == flops.unet_flops(nb, profile, "cpu")


def test_nb2script_injects_parameters_after_the_parameters_cell_and_comments_out_magics(tmp_path):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["A = 1\n", "B = 'x'\n"]},
        {"cell_type": "code", "metadata": {}, "source": ["%pip install nothing\n", "!ls\n", "C = A + 1\n"]},
        {"cell_type": "code", "metadata": {}, "source": ["%%time\n", "C = 100\n"]},
        {"cell_type": "code", "metadata": {}, "source": ["S = '''\n", "%not a magic\n", "'''\n"]},
    ]
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    script = tmp_path / "n.py"
    nb2script.main([str(notebook), str(script), "-p", "A", "41", "-p", "B", "some/path"])
    namespace = {}
    exec(script.read_text(), namespace)
    assert (namespace["A"], namespace["B"], namespace["C"]) == (41, "some/path", 42)   # %%time cell commented out
    assert "%not a magic" in namespace["S"]
    with pytest.raises(SystemExit, match="unknown parameter"):
        nb2script.main([str(notebook), str(script), "-p", "TYPO", "1"])


def test_nb2script_converts_the_real_notebook_with_every_parameter_name_it_injects(tmp_path):
    script = tmp_path / "run.py"
    nb2script.main([str(NOTEBOOK), str(script), "-p", "PROFILE", "smoke", "-p", "RESUME", "False",
                    "-p", "OUT_DIR", "/tmp/x", "-p", "REPORT_DIR", "/tmp/y", "-p", "CKPT_PATH", "/tmp/z.pt",
                    "-p", "DATA_DIR", "/tmp/d", "-p", "TRAIN_MINUTES", "None", "-p", "DEVICE", "cpu"])
    compile(script.read_text(), str(script), "exec")


def run_gpu_run(out, *params, **env):
    keep = {k: v for k, v in os.environ.items() if k not in ("PROFILE", "TRAIN_MINUTES", "BENCH", "BENCH_ARGS", "CHECK_ONLY")}
    env = dict(keep, PYTHON=sys.executable, OUT=str(out), **env)
    return subprocess.run(["bash", "bench/gpu_run.sh", *params], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_gpu_run_in_the_smoke_profile_on_the_cpu_writes_everything_into_out(tmp_path):
    raw = ROOT / "data" / "FashionMNIST" / "raw"
    if not raw.is_dir():
        pytest.skip("no Fashion-MNIST in data/ (make data)")
    data = tmp_path / "data"                                 # its own FID cache, the repository's images
    (data / "FashionMNIST").mkdir(parents=True)
    (data / "FashionMNIST" / "raw").symlink_to(raw)
    out = tmp_path / "out"
    run = run_gpu_run(out, "-p", "DATA_DIR", str(data), PROFILE="smoke", BENCH="1", BENCH_ARGS="--smoke --profiles smoke")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    results = json.loads((out / "figures" / "results.json").read_text())
    assert results["config"]["profile"] == "smoke" and results["train"]["steps_done"] > 0
    assert (out / "figures" / "samples_ancestral.png").stat().st_size > 1000
    assert (out / "report" / "results.tex").is_file() and (out / "ckpt.pt").is_file()
    assert "[nb2script] cell" in (out / "notebook.log").read_text()
    assert set(json.loads((out / "flops.json").read_text())["profiles"]) == {"smoke"}
    assert (out / "flops.md").is_file()
    if importlib.util.find_spec("diffusers"):
        assert json.loads((out / "bench.json").read_text())["profiles"]["smoke"]["rows"]
    else:
        assert "diffusers is not installed" in run.stdout
    assert "No CUDA GPU (torch" in run.stdout or "GPU: " in run.stdout      # PROFILE=smoke given: it runs on the CPU
    assert "== summary" in run.stdout and "profile smoke" in run.stdout
    # the precision study on that run's checkpoint: the same x_T through DDIM-50 in fp32 and under bf16 autocast
    prec = subprocess.run([sys.executable, "bench/precision.py", "--checkpoint", str(out / "ckpt.pt"), "--results",
                           str(out / "figures" / "results.json"), "--n", "20", "--batch", "10", "--precisions", "bf16",
                           "--out", str(tmp_path / "precision")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert prec.returncode == 0, prec.stderr[-3000:]
    (row,) = json.loads((tmp_path / "precision.json").read_text())["results"]
    assert row["sampler"] == "ddim50" and row["precision"] == "bf16" and row["lo"] <= row["gap"] <= row["hi"]
    assert row["gap"] == pytest.approx(row["fid"] - row["fid_fp32"]) and 0 <= row["mean_abs_grey"] < 255
    assert "| ddim50 | bf16 |" in (tmp_path / "precision.md").read_text()


def test_gpu_run_without_cuda_and_without_an_explicit_profile_stops_at_once(tmp_path):
    """PROFILE defaults to full, hours on a CPU: without CUDA the script refuses, names what it found and how
    to force it, and runs nothing."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would run the full profile")
    start = time.monotonic()
    run = run_gpu_run(tmp_path / "out")                       # no PROFILE in its environment
    seconds = time.monotonic() - start
    said = run.stdout + run.stderr
    assert run.returncode != 0, said
    assert "CUDA" in said and "torch.cuda.is_available() is False" in said and torch.__version__ in said
    assert "PROFILE=cpu" in said and "PROFILE=full" in said
    assert not (tmp_path / "out").exists() and "== notebook" not in said   # stopped before the notebook
    assert seconds < 60, seconds                                # two Python starts, not a training run


def test_gpu_run_says_what_is_missing_and_how_to_add_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = run_gpu_run(tmp_path / "out", "-p", "DATA_DIR", str(empty), CHECK_ONLY="1")
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"MISSING: FashionMNIST in {empty}/FashionMNIST/raw/" in run.stdout and "make data" in run.stdout
    assert ("MISSING: a CUDA GPU" in run.stdout) != torch.cuda.is_available()   # without PROFILE, CUDA is needed
    assert not (tmp_path / "out").exists()                     # the checks alone write nothing
    bad = run_gpu_run(tmp_path / "out", "-p", "PROFILE")        # -p needs NAME and VALUE
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_cpu_recipe_study_keeps_every_speed_row_and_scores_every_recipe_against_the_baseline(tmp_path, monkeypatch):
    import cpu_recipes

    def broken_compile(model, **kwargs):                 # compiling for real takes minutes on a CPU
        raise RuntimeError("no C++ compiler")
    monkeypatch.setattr(cpu_recipes.torch, "compile", broken_compile)
    data = tmp_path / "data"                              # the FID cache of this tiny reference stays out of data/
    data.mkdir()
    (data / "FashionMNIST").symlink_to(ROOT / "data" / "FashionMNIST")
    out = tmp_path / "study"
    cpu_recipes.main(["--profile", "smoke", "--fraction", "0.25", "--n", "4", "--real-n", "8", "--window-s", "0",
                      "--recipes", "0,3", "--data", str(data), "--out", str(out)])   # each FID costs seconds
    results, table = json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()
    assert set(results["speed"]) == set(cpu_recipes.SPEED_ROWS)
    assert "no C++ compiler" in results["speed"]["torch.compile"]["error"]
    assert all(r["images_per_s"] > 0 for name, r in results["speed"].items() if name != "torch.compile")
    names = list(cpu_recipes.RECIPES)
    baseline = names[0]
    assert set(results["recipes"]) == {baseline, names[3]}
    for name, row in results["recipes"].items():
        assert row["steps"] >= 1 and set(row["fid"]) == {"0", "1"} and f"| {name} |" in table
        assert set(row["gap"]) == (set() if name == baseline else {"0", "1"})
        for eta, gap in row["gap"].items():                # gap = baseline FID - recipe FID, with its interval
            assert gap["low"] <= gap["high"]
            assert gap["gap"] == pytest.approx(results["recipes"][baseline]["fid"][eta] - row["fid"][eta])
    batch64 = results["recipes"][names[3]]["steps"]
    assert "batch 64" in names[3]
    assert batch64 != results["recipes"][baseline]["steps"]   # equal time, not equal steps, for another batch size
