"""bench/: the diffusers twin, the benchmark, the FLOP count, the notebook-to-script converter, the device run."""
import json
import os
import subprocess
import sys

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
        expected = ["training", "ablation", "ancestral sampling", "DDIM-50 without clipping", "raw vs EMA figure",
                    "bound (bits/dim)", "FID features (Inception-v3, 299x299)"]
        expected += [f"DDIM-{k}" for k in nb.PROFILES[name]["ddim_steps"] if k <= nb.PROFILES[name]["T"]]
        assert set(expected) <= set(phases), (name, phases)
        assert p["total_flops"] > 0 and p["total_pflop"] == pytest.approx(p["total_flops"] / 1e15)
        assert p["train_step_flops"] > 2 * p["forward_flops_per_image"] * nb.PROFILES[name]["batch_size"]  # + backward
        assert f"### profile `{name}`" in printed
    assert report["profiles"]["full"]["total_flops"] > report["profiles"]["smoke"]["total_flops"]


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


@pytest.mark.skipif(not os.environ.get("RUN_DEVICE_SIM"),
                    reason="the device run's CPU simulation takes minutes: set RUN_DEVICE_SIM=1")
def test_device_run_simulated_on_the_cpu_returns_every_file_and_unpacks(tmp_path):
    env = dict(os.environ, SIM=str(tmp_path / "sim"), PYTHON=sys.executable, COMPRESS="0")
    subprocess.run(["bash", "bench/prepare_device_carry.sh"], cwd=ROOT, env=env, check=True)
    subprocess.run(["bash", "bench/simulate_device_run.sh"], cwd=ROOT, env=env, check=True, timeout=900)
    unpacked = tmp_path / "sim" / "unpacked"
    assert (unpacked / "figures" / "results.json").is_file() and (unpacked / "bench.md").is_file()
    assert str(tmp_path / "sim" / "scratch" / "pkgs") in (unpacked / "log-run.txt").read_text()  # carried FID weights used
