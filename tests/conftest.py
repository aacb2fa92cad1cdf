"""Shared fixtures: the notebook's `defs` cells executed into one namespace."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "CW2_Handout_Template_code.ipynb"


def notebook_cells(tag=None):
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [c for c in cells if tag is None or tag in c["metadata"].get("tags", [])]


def load_defs():
    """Run every cell tagged `defs` (imports and definitions only) and return their names."""
    namespace = {"__name__": "notebook_defs"}
    for cell in notebook_cells("defs"):
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}[defs]", "exec"), namespace)
    return SimpleNamespace(**namespace)


@pytest.fixture(scope="session")
def nb():
    return load_defs()


def default_parameters():
    """The values of the notebook's `parameters` cell, as a dict."""
    namespace = {}
    exec("".join(notebook_cells("parameters")[0]["source"]), namespace)
    return {k: v for k, v in namespace.items() if k.isupper()}
