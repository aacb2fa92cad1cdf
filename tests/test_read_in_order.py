"""The notebook reads in order: the parameters cell is the run, and no visible cell uses a name that only a later
cell defines."""
import ast
import builtins
import json

import pytest
import torch

from conftest import ROOT, default_parameters, notebook_cells

PROFILED_KEY = lambda name: name if name == "T" else name.lower()


def bound_names(tree):
    """Every name a cell binds anywhere: assignments, defs, classes, imports, arguments, loop and with targets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def loaded_names(tree):
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def test_no_visible_cell_uses_a_name_that_only_a_later_cell_defines():
    cells = [c for c in notebook_cells() if c["cell_type"] == "code"]
    trees = [ast.parse("".join(c["source"])) for c in cells]
    bound = [bound_names(t) for t in trees]
    known = set(dir(builtins))
    for i, (cell, tree) in enumerate(zip(cells, trees)):
        if not cell["metadata"].get("jupyter", {}).get("source_hidden", False):
            later = set().union(*bound[i + 1:]) if i + 1 < len(bound) else set()
            early = loaded_names(tree) - bound[i] - known
            used_before_defined = {name for name in early if name in later}
            assert not used_before_defined, (i, sorted(used_before_defined), "".join(cell["source"])[:80])
        known |= bound[i]


def run_parameters_cell(monkeypatch, gpu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    return default_parameters()


def test_the_parameters_cell_without_a_gpu_is_the_committed_runs_configuration(monkeypatch):
    params = run_parameters_cell(monkeypatch, gpu=False)
    config = json.loads((ROOT / "figures" / "results.json").read_text())["config"]
    assert config["profile"] == "cpu"
    for name, value in params.items():
        key = name.lower() if name != "T" else "T"
        if key in config and name not in ("PROFILE", "DEVICE"):               # those two are resolved ("auto")
            assert config[key] == value, (name, value, config[key])


@pytest.mark.parametrize("gpu,profile", [(True, "full"), (False, "cpu")])
def test_the_parameters_cell_shows_each_profiles_values(nb, monkeypatch, gpu, profile):
    params = run_parameters_cell(monkeypatch, gpu)
    assert params["GPU"] is gpu
    for name in nb.PROFILED:
        assert params[name] == nb.PROFILES[profile][PROFILED_KEY(name)], name


def test_a_value_typed_or_passed_is_the_value_used_on_any_profile(nb, monkeypatch):
    params = run_parameters_cell(monkeypatch, gpu=False)
    assert nb.resolve_config(dict(params, LR=5e-4)).lr == 5e-4                  # typed on a CPU: not replaced
    smoke = dict(params, LR=0.0005, PROFILE="smoke", OUT_DIR="/tmp/o", REPORT_DIR=None, CKPT_PATH="/tmp/o/c.pt")
    cfg = nb.resolve_config(smoke)                                            # -p LR 0.0005 -p PROFILE smoke
    assert cfg.lr == 0.0005 and cfg.train_steps == nb.PROFILES["smoke"]["train_steps"]
    full = nb.resolve_config(dict(params, PROFILE="full", FID_N=700))         # -p PROFILE full -p FID_N 700 on a CPU
    assert full.fid_n == 700 and full.train_steps == nb.PROFILES["full"]["train_steps"]
