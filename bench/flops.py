#!/usr/bin/env python3
"""Network FLOPs of one notebook run, by phase, for each profile (counted, not estimated).

torch.utils.flop_counter.FlopCounterMode counts the matrix products and convolutions (2 FLOPs per
multiply-add; normalisations and pointwise ops are not counted). What is counted:
  - one real training step of the notebook's U-Net at the profile's batch size (p_losses, backward,
    Adam step), and one forward per image (as in every sampler step);
  - torchvision's Inception-v3 at 299x299 for one image (the FID feature network's architecture).
Those per-image numbers are multiplied by the work each phase of the notebook does, as the notebook's own
`work_plan` counts it (the same count its run-time forecast uses).
Profiles are read from the notebook's `defs` cells at run time. Attention is counted with the
math SDPA backend, so that its matrix products are seen on every device. By default the step runs
on PyTorch's "meta" device (shapes only, no arithmetic: seconds instead of minutes on a CPU);
--device cpu runs it for real and counts the same FLOPs (tests/test_bench.py checks this).

Usage: python bench/flops.py [--profiles smoke,cpu,full] [--device meta|cpu] [--json FILE] [--out FILE]
"""
import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbdefs import build_unet, load_defs, notebook_cells  # noqa: E402

IMAGE_SHAPE = (1, 28, 28)
ASSUMED_RATE = 15e12    # FLOP/s: a T4-class GPU, sustained fp16 -- an ASSUMPTION, not a measurement


def math_attention():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel(SDPBackend.MATH)
    except Exception:  # older torch: the default path
        return contextlib.nullcontext()


def count(fn):
    with FlopCounterMode(display=False) as counter, math_attention():
        fn()
    return counter.get_total_flops()


def unet_flops(nb, profile, device="meta"):
    """(FLOPs of one training step at the profile's batch size, FLOPs of one forward per image)."""
    torch.manual_seed(0)
    model = build_unet(nb, profile, IMAGE_SHAPE[0]).to(device)
    schedule = nb.make_schedule("linear", profile["T"], device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=profile["lr"], weight_decay=0.0)
    x0 = torch.rand(profile["batch_size"], *IMAGE_SHAPE, device=device) * 2 - 1

    def train_step():
        loss = nb.p_losses(schedule, model, x0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    n = 4
    x, t = torch.randn(n, *IMAGE_SHAPE, device=device), torch.full((n,), profile["T"] - 1, device=device)
    with torch.no_grad():
        forward = count(lambda: model(x, t)) / n            # train mode: no fused fast path to hide
    return count(train_step), forward


def inception_flops(device="meta"):
    """FLOPs of Inception-v3 (torchvision's architecture, random weights) on one 299x299 image."""
    import torchvision
    with torch.device(device):
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    with torch.no_grad():
        return count(lambda: net(torch.zeros(1, 3, 299, 299, device=device)))


UNITS = {"train": "images through a training step", "unet": "U-Net forwards", "unet_fp32": "U-Net forwards (fp32)",
         "inception": "Inception images", "frechet": "FID scores (not counted: a 2048-d eigenproblem each)",
         "interval": "FID intervals (not counted: a bootstrap of eigenproblems each)"}


def profile_config(nb, name):
    """The configuration the notebook runs for profile `name` with its default parameters."""
    params = {}
    exec("".join(notebook_cells(tag="parameters")[0]["source"]), params)
    params.update(PROFILE=name, DEVICE="cpu", OUT_DIR="/nonexistent/out", REPORT_DIR=None, CKPT_PATH="/nonexistent/ckpt.pt")
    return nb.resolve_config(params)


def phases(nb, name, step_flops, fwd, incep):
    """[(phase, what is counted, FLOPs)]: the notebook's own work_plan (what its forecast counts), in FLOPs."""
    cfg = profile_config(nb, name)
    per_image = {"train": step_flops / cfg.batch_size, "unet": fwd, "unet_fp32": fwd, "inception": incep,
                 "frechet": 0, "interval": 0}
    return [(phase, "; ".join(f"{n:,} {UNITS[net]}" for net, n in work.items() if n) or "nothing",
             sum(n * per_image[net] for net, n in work.items()))
            for phase, work in nb.work_plan(cfg).items()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default=None, help="comma-separated (default: every notebook profile)")
    parser.add_argument("--rate", type=float, default=ASSUMED_RATE, help="assumed sustained FLOP/s for the time estimate")
    parser.add_argument("--device", default="meta", choices=("meta", "cpu"),
                        help="meta: count shapes only (fast, default); cpu: run the step for real")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown to FILE")
    args = parser.parse_args(argv)
    nb = load_defs()
    names = [n.strip() for n in args.profiles.split(",")] if args.profiles else list(nb.PROFILES)
    for n in names:
        if n not in nb.PROFILES:
            parser.error(f"--profiles: {n!r} is not a notebook profile ({list(nb.PROFILES)})")
    incep = inception_flops(args.device)
    rate_text = f"{args.rate / 1e12:g} TFLOP/s"
    out = dict(assumed_rate_flops=args.rate, assumption=f"{rate_text}: T4-class GPU, sustained fp16 -- an ASSUMPTION",
               inception_flops_per_image=incep, profiles={})
    lines = ["## Network FLOPs by phase (FlopCounterMode: matmuls and convolutions, 2 FLOPs per multiply-add)", "",
             f"Inception-v3 at 299x299: {incep / 1e9:.2f} GFLOP per image. Time column: FLOPs / {rate_text} "
             f"(T4-class GPU, sustained fp16): an ASSUMPTION, not a measurement.", ""]
    for name in names:
        p = nb.PROFILES[name]
        step, fwd = unet_flops(nb, p, args.device)
        rows = phases(nb, name, step, fwd, incep)
        total = sum(f for _, _, f in rows)
        params = sum(x.numel() for x in build_unet(nb, p).parameters())
        out["profiles"][name] = dict(parameters=params, train_step_flops=step, forward_flops_per_image=fwd,
                                     phases=[dict(phase=a, counted=b, flops=f) for a, b, f in rows],
                                     total_flops=total, total_pflop=total / 1e15, assumed_seconds=total / args.rate)
        lines += [f"### profile `{name}`: {params:,} parameters; forward {fwd / 1e6:.1f} MFLOP per image, "
                  f"training step {step / 1e9:.2f} GFLOP (batch {p['batch_size']})", "",
                  "| phase | counted | FLOPs | PFLOP | share | time at assumed rate |", "|---|---|---:|---:|---:|---:|"]
        for phase, what, f in rows:
            lines.append(f"| {phase} | {what} | {f:.3e} | {f / 1e15:.4f} | {100 * f / total:.1f}% | {f / args.rate:,.1f} s |")
        lines += [f"| **total** | | **{total:.3e}** | **{total / 1e15:.4f}** | 100% | **{total / args.rate / 60:,.1f} min** |", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
