#!/usr/bin/env python3
"""Unpack and check what the device run sent back (the $OUT folders of its calls).

Copies the logs, tables and nvidia-smi output into DEST, unpacks figures.tar.gz there
(DEST/figures/, DEST/report/results.tex, DEST/run_info.json, DEST/flops.json), then checks it:
every figure as PDF and PNG, results.json complete and of the expected profile, results.tex
holding every macro, and the benchmark and FLOP tables present. Exit status 1 if a check fails.
To adopt the run: cp DEST/figures/* figures/ && cp DEST/report/results.tex report/

Usage: python bench/unpack_device_run.py OUT_DIR [OUT_DIR...] --dest DEST [--expect-profile full]
"""
import argparse
import json
import shutil
import sys
import tarfile
from pathlib import Path


def unpack(out_dirs, dest):
    dest.mkdir(parents=True, exist_ok=True)
    for out in out_dirs:
        for f in sorted(Path(out).iterdir()):
            if f.name == "figures.tar.gz":
                with tarfile.open(f) as tar:
                    try:
                        tar.extractall(dest, filter="data")
                    except TypeError:                 # Python < 3.11.4: no extraction filters
                        tar.extractall(dest)
            elif f.is_file():
                shutil.copy2(f, dest / f.name)


def check(dest, expect_profile=None, need_bench=True):
    """A list of problems (empty when everything is there)."""
    problems = []
    figures = dest / "figures"
    results_path = figures / "results.json"
    if not results_path.is_file():
        return [f"no {results_path}: the notebook did not finish (see the log)"]
    results = json.loads(results_path.read_text())
    pdfs, pngs = {p.stem for p in figures.glob("*.pdf")}, {p.stem for p in figures.glob("*.png")}
    if not pdfs:
        problems.append("no figures")
    if pdfs != pngs:
        problems.append(f"figures without a PDF/PNG twin: {sorted(pdfs ^ pngs)}")
    problems += [f"empty figure {p.name}" for p in figures.glob("*.p*") if p.stat().st_size < 1000]
    for key in ("config", "device", "model", "train", "timings", "samplers", "macros"):
        if key not in results:
            problems.append(f"results.json has no {key!r}")
    if expect_profile and results.get("config", {}).get("profile") != expect_profile:
        problems.append(f"profile {results.get('config', {}).get('profile')!r}, expected {expect_profile!r}")
    tex = dest / "report" / "results.tex"
    if not tex.is_file():
        problems.append("no report/results.tex")
    else:
        text = tex.read_text()
        problems += [f"results.tex lacks \\{m}" for m in results.get("macros", {}) if f"\\newcommand{{\\{m}}}" not in text]
    flops = dest / "flops.md"
    if not flops.is_file() or "**total**" not in flops.read_text():
        problems.append("no FLOP table (flops.md)")
    if need_bench:
        bench = dest / "bench.md"
        if not bench.is_file() or "| notebook |" not in bench.read_text():
            problems.append("no benchmark table (bench.md)")
    info = dest / "run_info.json"
    if info.is_file() and json.loads(info.read_text()).get("notebook_rc") != "0":
        problems.append(f"the notebook's exit status was {json.loads(info.read_text()).get('notebook_rc')}")
    return problems


def summary(dest):
    results = json.loads((dest / "figures" / "results.json").read_text())
    train, timings = results.get("train", {}), results.get("timings", {})
    lines = [f"profile {results['config']['profile']} on {results.get('device')}: "
             f"{train.get('steps_done')} steps, {train.get('images_per_s') or 0:.0f} images/s, "
             f"total {timings.get('total_minutes', 0):.1f} min"]
    for name, r in results.get("samplers", {}).items():
        lines.append(f"  {name}: FID {r.get('fid')}, {r.get('seconds_per_1000', 0):.1f} s per 1000 images")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dirs", nargs="+", type=Path, help="the $OUT folders as they came back (call 1, call 2)")
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--expect-profile", default=None)
    parser.add_argument("--no-bench", action="store_true", help="do not require the benchmark table")
    args = parser.parse_args(argv)
    unpack(args.out_dirs, args.dest)
    problems = check(args.dest, args.expect_profile, not args.no_bench)
    print("\n".join(sorted(str(p.relative_to(args.dest)) for p in args.dest.rglob("*") if p.is_file())))
    if (args.dest / "figures" / "results.json").is_file():
        print(summary(args.dest))
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
