"""The notebook's definitions, loaded the way tests/conftest.py loads them (without importing it).

Every code cell tagged `defs` is executed, in order, into one namespace. Nothing is copied from the
notebook by hand, so the benchmark and the FLOP count always measure the notebook as it is now.
"""
import json
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "CW2_Handout_Template_code.ipynb"


def notebook_cells(notebook=NOTEBOOK, tag=None):
    cells = json.loads(Path(notebook).read_text())["cells"]
    return [c for c in cells if tag is None or tag in c["metadata"].get("tags", [])]


def load_defs(notebook=NOTEBOOK):
    """Run every cell tagged `defs` and return their names as a namespace."""
    namespace = {"__name__": "notebook_defs"}
    for cell in notebook_cells(notebook, "defs"):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        exec(compile(source, f"{Path(notebook).name}[defs]", "exec"), namespace)
    return SimpleNamespace(**namespace)


def build_unet(nb, profile, in_channels=1):
    """The notebook's U-Net at a profile's size (what the notebook's build_model does)."""
    if hasattr(nb, "build_model"):                      # if build_model ever moves into a defs cell
        cfg = SimpleNamespace(**profile)
        return nb.build_model(cfg, (in_channels, 28, 28))
    return nb.UNet(in_channels, profile["base_channels"], tuple(profile["channel_mults"]),
                   profile["num_res_blocks"])
