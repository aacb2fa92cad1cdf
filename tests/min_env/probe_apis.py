"""Call every library API the notebook relies on, in the environment this runs in, and say which are missing.

    .venv-min/bin/python tests/min_env/probe_apis.py     # torch 2.1 / torchvision 0.16 / numpy 1.x
    .venv/bin/python tests/min_env/probe_apis.py         # the current releases

CUDA-only calls are checked by signature where no GPU is present (they are still the calls the notebook
makes on a JupyterHub GPU). Each line: OK or MISSING, the API, and where the notebook uses it.
Then it resolves every module-level dotted name the notebook's code mentions (torch.x.y, np.x, plt.x, ...).
A name reported MISSING is only a problem where the notebook calls it unguarded: torch.amp.GradScaler, for
one, is missing in torch 2.1 and the notebook checks hasattr(torch.amp, "GradScaler") before using it.
Exit status: the number of missing APIs (0: all present).
"""
import inspect
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

RESULTS = []


def probe(name, where, fn):
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            note = fn()
        deprecations = sorted({str(w.message).splitlines()[0][:110] for w in caught
                               if issubclass(w.category, (DeprecationWarning, FutureWarning, UserWarning))})
        RESULTS.append(("OK", name, where, note or ("warns: " + " | ".join(deprecations) if deprecations else "")))
    except Exception as err:  # noqa: BLE001 - report everything
        RESULTS.append(("MISSING", name, where, f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"))


def has_param(fn, param):
    if param not in inspect.signature(fn).parameters:
        raise TypeError(f"{fn.__qualname__}{inspect.signature(fn)} has no parameter {param!r}")


def swa_imports():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: F401


def averaged_model_multi_avg_fn():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    model = nn.Linear(3, 2)

    def update(ema_params, params, num_averaged):   # the notebook's ema_with_warmup
        get_ema_multi_avg_fn(min(0.999, (1 + int(num_averaged)) / (10 + int(num_averaged))))(ema_params, params, num_averaged)
    ema = AveragedModel(model, multi_avg_fn=update)
    for _ in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        ema.update_parameters(model)
    assert int(ema.n_averaged) == 3 and not torch.equal(ema.module.weight, model.weight)
    ema.load_state_dict(ema.state_dict())


def amp_grad_scaler():
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    scaler.load_state_dict(scaler.state_dict()) if scaler.state_dict() else None


def annotation_amp_grad_scaler():
    from dataclasses import dataclass

    @dataclass
    class S:
        scaler: torch.amp.GradScaler   # evaluated when the class is defined


def cuda_amp_grad_scaler_fallback():
    scaler = torch.cuda.amp.GradScaler(enabled=False)
    scaler.scale(torch.tensor(1.0, requires_grad=True))


def adamw_fused_kw():
    has_param(torch.optim.AdamW.__init__, "fused")
    p = nn.Parameter(torch.zeros(2))
    torch.optim.AdamW([p], lr=1e-3, weight_decay=0.0, fused=False).step()


def lambda_lr_and_type():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(2))], lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 5))
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    sched.load_state_dict(sched.state_dict())


def bf16_including_emulation():
    has_param(torch.cuda.is_bf16_supported, "including_emulation")


def autocast_cpu_disabled():
    with torch.autocast("cpu", dtype=None, enabled=False):
        (torch.ones(2, 2) @ torch.ones(2, 2)).sum()


def autocast_signature():
    has_param(torch.autocast.__init__, "dtype")


def torch_load_weights_only():
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "x.pt")
        import random
        torch.save({"rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}, path)
        torch.load(path, map_location="cpu", weights_only=False)
        torch.save({"real_features_sum": torch.zeros(3)}, path)
        torch.load(path)                        # the FID cache: no weights_only argument


def generator_device():
    g = torch.Generator(torch.device("cpu")).manual_seed(0)
    torch.randn((2, 1, 4, 4), generator=g, device=torch.device("cpu"))
    torch.randperm(10, generator=torch.Generator().manual_seed(3))


def cuda_rng_all():
    torch.cuda.get_rng_state_all()


def mha_batch_first():
    attn = nn.MultiheadAttention(16, 4, batch_first=True)
    h = torch.randn(2, 7, 16)
    attn(h, h, h, need_weights=False)


def misc_tensor_ops():
    x = torch.randn(4, 3, 5, 5)
    torch.cdist(x.flatten(1), x.flatten(1)).min(dim=1)
    torch.linspace(99, 0, 10).round().long().flip(0).tolist()
    torch.full((3,), 5, dtype=torch.long)
    x.split(2); x.flatten(0, 1); x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    F.interpolate(x, size=(9, 9), mode="bilinear", align_corners=False)
    F.mse_loss(x.float(), x)
    nn.utils.clip_grad_norm_(nn.Linear(2, 2).parameters(), 1.0)
    nn.GroupNorm(1, 3)(x); nn.Upsample(scale_factor=2, mode="nearest")(x)
    torch.as_tensor(np.zeros((2, 28, 28), dtype=np.uint8))


def jit_load_signature():
    has_param(torch.jit.load, "map_location")


def make_grid_uint8():
    from torchvision.utils import make_grid
    grid = make_grid(torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8), nrow=2, padding=1, pad_value=255)
    assert grid.dtype == torch.uint8 and grid.shape[0] == 3


def fashion_mnist_offline():
    root = Path(__file__).resolve().parents[2] / "data"
    if not (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
        return "skipped: no data/FashionMNIST/raw (make data)"
    ds = torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
    assert tuple(ds.data.shape) == (10000, 28, 28)


def subplots_layout_constrained():
    fig, axes = plt.subplots(1, 2, figsize=(3, 1), layout="constrained")
    plt.close(fig)


def set_yticks_labels():
    fig, ax = plt.subplots()
    ax.set_yticks([0.5, 1.5], ["a", "b"])
    plt.close(fig)


def savefig_pdf_png():
    with tempfile.TemporaryDirectory() as d:
        fig, ax = plt.subplots()
        ax.imshow(np.zeros((4, 4, 3), dtype=np.uint8), interpolation="nearest")
        ax.set_yscale("linear"); ax.set_xscale("log")
        for ext in ("pdf", "png"):
            fig.savefig(Path(d, f"x.{ext}"), bbox_inches="tight")
        plt.close(fig)


def rcparams():
    plt.rcParams.update({"axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False, "grid.alpha": 0.3})


def numpy_bits():
    np.random.set_state(np.random.get_state())
    np.convolve(np.ones(10), np.ones(3) / 3, mode="valid")
    np.mean([1.0, 2.0])


def tqdm_auto():
    from tqdm.auto import tqdm
    bar = tqdm(total=3, initial=1, desc="x", unit="step", dynamic_ncols=True, disable=True)
    bar.set_postfix(loss="1.0"); bar.update(1); bar.close()


def log_ndtr_tails():
    x = torch.tensor([-40.0, -5.0, 0.0, 40.0], dtype=torch.float64)
    y = torch.special.log_ndtr(x)
    assert torch.isfinite(y).all() and y[-1] == 0 and y[0] < -800
    torch.special.log_ndtr(x.float())


def cuda_memory_stats_signature():
    has_param(torch.cuda.max_memory_allocated, "device")
    has_param(torch.cuda.reset_peak_memory_stats, "device")
    has_param(torch.cuda.get_device_capability, "device")


PROBES = [
    ("from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn", "cell 3 (imports)", swa_imports),
    ("AveragedModel(model, multi_avg_fn=...) + get_ema_multi_avg_fn(decay)", "cells 25-26 ema_with_warmup / make_train_state", averaged_model_multi_avg_fn),
    ("torch.amp.GradScaler(device_type, enabled=...)", "cell 26 make_train_state", amp_grad_scaler),
    ("dataclass field annotation `scaler: torch.amp.GradScaler`", "cell 26 TrainState (evaluated at definition)", annotation_amp_grad_scaler),
    ("torch.cuda.amp.GradScaler(enabled=...)  [fallback candidate]", "fix for cell 26", cuda_amp_grad_scaler_fallback),
    ("torch.optim.AdamW(..., fused=bool)", "cell 26 make_train_state (fused=True on CUDA)", adamw_fused_kw),
    ("LambdaLR + torch.optim.lr_scheduler.LRScheduler", "cell 26 TrainState / make_train_state", lambda_lr_and_type),
    ("torch.cuda.is_bf16_supported(including_emulation=False)", "cell 26 autocast_dtype (CUDA only)", bf16_including_emulation),
    ("torch.autocast('cpu', dtype=None, enabled=False)", "cell 30 train", autocast_cpu_disabled),
    ("torch.autocast(device_type, dtype=...)", "cell 30 train (CUDA: bf16/fp16)", autocast_signature),
    ("torch.load(..., weights_only=False) and torch.load(path)", "cells 28 load_checkpoint, 45 fid_reference", torch_load_weights_only),
    ("torch.Generator(device).manual_seed / randn(generator=)", "cells 19, 26, 38, 40", generator_device),
    ("torch.cuda.get_rng_state_all()", "cell 28 save_checkpoint", cuda_rng_all),
    ("nn.MultiheadAttention(batch_first=True), need_weights=False", "cell 21 SelfAttention", mha_batch_first),
    ("cdist / linspace / interpolate / GroupNorm / Upsample / ...", "cells 21-51", misc_tensor_ops),
    ("torch.jit.load(path, map_location=)", "cell 44 fid_feature_extractor", jit_load_signature),
    ("torchvision.utils.make_grid(uint8, pad_value=255)", "cell 9 show_images", make_grid_uint8),
    ("torchvision.datasets.FashionMNIST(root, train, download=True) offline", "cell 11 load_images", fashion_mnist_offline),
    ("plt.subplots(..., layout='constrained')", "cells 16, 49", subplots_layout_constrained),
    ("Axes.set_yticks(ticks, labels)", "cell 49", set_yticks_labels),
    ("savefig pdf/png, bbox_inches='tight'", "cell 9 save_figure", savefig_pdf_png),
    ("plt.rcParams.update(...)", "cell 9", rcparams),
    ("np.random.get_state/set_state, np.convolve", "cells 28, 32", numpy_bits),
    ("torch.special.log_ndtr (float64, tails)", "VLB cells (discretised Gaussian likelihood)", log_ndtr_tails),
    ("torch.cuda.max_memory_allocated / reset_peak_memory_stats / get_device_capability(device)", "CUDA only", cuda_memory_stats_signature),
    ("tqdm.auto.tqdm(initial=, dynamic_ncols=, set_postfix)", "cells 30, 34, 38", tqdm_auto),
]


NOTEBOOK = Path(__file__).resolve().parents[2] / "CW2_Handout_Template_code.ipynb"
ALIASES = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "torchvision": "torchvision",
           "np": "numpy", "plt": "matplotlib.pyplot", "matplotlib": "matplotlib"}


def notebook_dotted_names():
    """Every `alias.attr.attr...` the notebook's code cells mention, for the aliases above."""
    import json
    import re
    code = "\n".join("".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code")
    code = re.sub(r"#.*", "", code)                                  # comments only, roughly
    pattern = re.compile(r"(?<![\w.])(" + "|".join(ALIASES) + r")((?:\.[A-Za-z_]\w*)+)")
    return sorted({m.group(1) + m.group(2) for m in pattern.finditer(code)})


def resolve(dotted):
    import importlib
    alias, *attrs = dotted.split(".")
    obj = importlib.import_module(ALIASES[alias])
    path = ALIASES[alias]
    for attr in attrs:
        path += "." + attr
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            try:
                obj = importlib.import_module(path)                   # a submodule not imported yet
            except ImportError:
                raise AttributeError(f"{path} does not exist") from None
    return obj


def probe_notebook_names():
    """Resolve every dotted name; instance attributes (x.shape) are not covered, only module-level ones."""
    missing = []
    for dotted in notebook_dotted_names():
        try:
            resolve(dotted)
        except Exception as err:  # noqa: BLE001
            missing.append((dotted, f"{type(err).__name__}: {err}"))
    return missing


def main():
    import matplotlib as mpl
    import tqdm
    print(f"python {sys.version.split()[0]}  torch {torch.__version__}  torchvision {torchvision.__version__}  "
          f"numpy {np.__version__}  matplotlib {mpl.__version__}  tqdm {tqdm.__version__}  cuda {torch.cuda.is_available()}")
    for name, where, fn in PROBES:
        probe(name, where, fn)
    width = max(len(r[1]) for r in RESULTS)
    for status, name, where, note in RESULTS:
        print(f"{status:7} {name:{width}}  [{where}]" + (f"\n          -> {note}" if note else ""))
    names = notebook_dotted_names()
    unresolved = probe_notebook_names()
    print(f"\nEvery module-level name the notebook uses ({len(names)}, e.g. torch.cuda.get_device_capability):")
    for dotted, why in unresolved:
        print(f"MISSING {dotted}\n          -> {why}")
    print(f"{len(names) - len(unresolved)} of {len(names)} resolve")
    missing = sum(r[0] == "MISSING" for r in RESULTS) + len(unresolved)
    print(f"\n{missing} missing in all ({len(RESULTS)} calls probed, {len(names)} names resolved)")
    return missing


if __name__ == "__main__":
    sys.exit(main())
