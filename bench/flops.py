#!/usr/bin/env python3
"""Network FLOPs of one notebook run, by phase, for each profile (counted, not estimated).

torch.utils.flop_counter.FlopCounterMode counts the matrix products and convolutions (2 FLOPs per
multiply-add; normalisations and pointwise ops are not counted). What is counted:
  - one real training step of the notebook's U-Net at the profile's batch size (p_losses, backward,
    Adam step), and one forward per image (as in every sampler step);
  - torchvision's Inception-v3 at 299x299 for one image (the FID feature network's architecture).
Those per-image numbers are multiplied by the work each phase of the notebook does, as the notebook's own
`work_plan` counts it (the same count its run-time forecast uses).
Beside them, the FID statistics (the notebook's `fid_work` at the sizes each phase uses: float64 and float32
matrix-product FLOP and eigen solves), and the forecast seconds of both on a T4, an L4, an A100 and an H100 from
their datasheet peaks (CARDS) at a stated utilisation, with the intervals' share of the whole run on each.
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
# Peak TFLOP/s from NVIDIA's datasheets (T4; L4; A100 SXM4 80GB; H100 SXM5): fp64 without tensor cores, fp32, and
# fp16 tensor cores without sparsity. T4 and L4 list no fp64; it is 1/32 (Turing) and 1/64 (Ada) of their fp32.
CARDS = {"T4": dict(fp64=0.25, fp32=8.1, fp16=65), "L4": dict(fp64=0.49, fp32=30.3, fp16=121),
         "A100": dict(fp64=9.7, fp32=19.5, fp16=312), "H100": dict(fp64=34, fp32=67, fp16=989)}
# ASSUMED utilisation of those peaks: the network at ASSUMED_RATE's share of a T4 (small U-Net, 28x28 images); the
# statistics' large matrix products at half. An eigen solve of size k takes the longer of 9 k^3 float64 FLOP (symmetric
# QR with vectors, Golub & Van Loan 2013, sec. 8.3) at that rate and k sequential GPU steps of EIGH_STEP_S each.
UTILISATION = dict(network=ASSUMED_RATE / 65e12, statistics=0.5)
EIGH_STEP_S = 20e-6
INTERVAL_SHARE_LIMIT = 0.10   # the FID intervals of the full profile stay within 10% of its time on every card


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
         "ancestral_step": "U-Net forwards (ancestral steps)", "ddim_step": "U-Net forwards (DDIM steps)",
         "inception": "Inception images", "frechet": "FID scores (statistics: second table)",
         "interval": "FID intervals (statistics: second table)"}


def profile_config(nb, name):
    """The configuration the notebook runs for profile `name` with its default parameters."""
    params = {}
    exec("".join(notebook_cells(tag="parameters")[0]["source"]), params)
    params.update(PROFILE=name, DEVICE="cpu", OUT_DIR="/nonexistent/out", REPORT_DIR=None, CKPT_PATH="/nonexistent/ckpt.pt")
    return nb.resolve_config(params)


def phases(nb, name, step_flops, fwd, incep):
    """[(phase, what is counted, FLOPs)]: the notebook's own work_plan (what its forecast counts), in FLOPs."""
    cfg = profile_config(nb, name)
    per_image = {"train": step_flops / cfg.batch_size, "unet": fwd, "ancestral_step": fwd, "ddim_step": fwd,
                 "unet_fp32": fwd, "inception": incep, "frechet": 0, "interval": 0}
    return [(phase, "; ".join(f"{n:,} {UNITS[net]}" for net, n in work.items() if n) or "nothing",
             sum(n * per_image[net] for net, n in work.items()))
            for phase, work in nb.work_plan(cfg).items()]


def statistics(nb, name):
    """{phase: [(kind, n, calls)]}: the FID statistics of each phase of work_plan, as fid_work kinds. The floor at each
    of floor_sizes; a score or interval at ABLATION_N in the ablation, else at the larger of FID_N and ANCESTRAL_N
    (an upper bound)."""
    cfg = profile_config(nb, name)
    plan = {}
    for phase, work in nb.work_plan(cfg).items():
        n = cfg.ablation_n if phase == "ablation" else max(cfg.fid_n, cfg.ancestral_n)
        calls = [(kind, n, work.get(kind, 0)) for kind in ("frechet", "interval")]
        if phase == "fid_floor":
            calls = [("floor", size, 1) for size in nb.floor_sizes(cfg)] if work.get("interval") else []
        if any(k and n for _, n, k in calls):
            plan[phase] = [(kind, n, k) for kind, n, k in calls if k and n]
    return plan, cfg.fid_real_n


def card_seconds(work, card):
    """Forecast seconds of fid_work-style `work` on CARDS[card] at the assumed utilisation."""
    peak, u = CARDS[card], UTILISATION["statistics"]
    eigh = sum(k * max(9 * size**3 / (peak["fp64"] * 1e12 * u), size * EIGH_STEP_S) for size, k in work["eigh"].items())
    return work["flop64"] / (peak["fp64"] * 1e12 * u) + work["flop32"] / (peak["fp32"] * 1e12 * u) + eigh


def statistics_report(nb, name, network_flops):
    """(JSON, markdown lines): the statistics of profile `name` by phase, and their share of its time on each card."""
    plan, m = statistics(nb, name)
    phases, cards = [], {c: dict(statistics_s=0.0, intervals_s=0.0) for c in CARDS}
    for phase, calls in plan.items():
        row = dict(phase=phase, scores=0, intervals=0, flop64=0, flop32=0, eigh={}, seconds={c: 0.0 for c in CARDS})
        for kind, n, k in calls:
            w = nb.fid_work(kind, n, m)
            row["scores" if kind == "frechet" else "intervals"] += k
            row["flop64"] += k * w["flop64"]
            row["flop32"] += k * w["flop32"]
            for size, solves in w["eigh"].items():
                row["eigh"][size] = row["eigh"].get(size, 0) + k * solves
            for c in CARDS:
                seconds = k * card_seconds(w, c)
                row["seconds"][c] += seconds
                cards[c]["statistics_s"] += seconds
                cards[c]["intervals_s"] += seconds * (kind != "frechet")
        phases.append(row)
    for c, v in cards.items():
        v["network_s"] = network_flops / (CARDS[c]["fp16"] * 1e12 * UTILISATION["network"])
        v["total_s"] = v["network_s"] + v["statistics_s"]
        v.update(intervals_share=v["intervals_s"] / v["total_s"], statistics_share=v["statistics_s"] / v["total_s"])
    lines = [f"FID statistics (the notebook's fid_work against {m:,} reference images; seconds at "
             f"{UTILISATION['statistics']:.0%} of the datasheet fp64/fp32 peaks: an ASSUMPTION)", "",
             "| phase | FID scores | intervals | float64 FLOP | float32 FLOP | eigen solves (count x size) | "
             + " | ".join(f"{c}" for c in CARDS) + " |", "|---|---:|---:|---:|---:|---|" + "---:|" * len(CARDS)]
    for p in phases:
        solves = ", ".join(f"{k} x {size}" for size, k in sorted(p["eigh"].items()))
        lines.append(f"| {p['phase']} | {p['scores']} | {p['intervals']} | {p['flop64']:.2e} | {p['flop32']:.2e} | "
                     f"{solves} | " + " | ".join(f"{p['seconds'][c]:,.1f} s" for c in CARDS) + " |")
    lines += ["", f"Network at {UTILISATION['network']:.0%} of the fp16 tensor peak (the T4 at {ASSUMED_RATE / 1e12:g} "
              "TFLOP/s, as above); the whole run is network plus statistics:", "",
              "| card | network | statistics | of which intervals | intervals' share of the run | statistics' share |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {c} | {v['network_s'] / 60:,.1f} min | {v['statistics_s']:,.1f} s | {v['intervals_s']:,.1f} s | "
              f"{v['intervals_share']:.1%} | {v['statistics_share']:.1%} |" for c, v in cards.items()]
    over = [c for c, v in cards.items() if v["intervals_share"] > INTERVAL_SHARE_LIMIT]
    lines += ["", f"FID intervals within {INTERVAL_SHARE_LIMIT:.0%} of the run on: "
              + (", ".join(c for c in cards if c not in over) or "none") + f"; over it on: {', '.join(over) or 'none'}."]
    return dict(fid_real_n=m, phases=phases, cards=cards), lines + [""]


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
               inception_flops_per_image=incep, cards=CARDS, utilisation=UTILISATION, eigh_step_s=EIGH_STEP_S,
               interval_share_limit=INTERVAL_SHARE_LIMIT, profiles={})
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
        out["profiles"][name]["statistics"], table = statistics_report(nb, name, total)
        lines += table
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
