#!/usr/bin/env python3
"""Does sampling under autocast change the FID? The same checkpoint, the same x_T, fp32 against bf16 (and fp16).

The notebook samples with the U-Net under autocast on a GPU (bf16 where the card computes it natively, fp16 on a
T4) and in fp32 on a CPU. Each reduced-precision set here starts from exactly the x_T (and, for the ancestral
sampler, the z_t) of the fp32 set, so row i of both sets is the same trajectory computed twice, and the notebook's
paired interval (`fid_gap`) measures the FID difference that the precision alone makes. Beside it: how far the
uint8 images moved (mean absolute difference in grey levels, share of images with any pixel off by more than 32).

    .venv/bin/python bench/precision.py                        # checkpoints/ddpm.pt, DDIM-50, N = 200, on the CPU
    .venv/bin/python bench/precision.py --device cuda --n 2000 --samplers ddim50 ancestral

Writes bench/precision.json and bench/precision.md (the table); never touches figures/ or report/.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from nbdefs import ROOT, load_defs  # noqa: E402

SAMPLERS = {"ddim50": ("ddim", 50), "ancestral": ("ancestral", None)}
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints/ddpm.pt"))
    ap.add_argument("--results", default=str(ROOT / "figures/results.json"), help="the run that wrote the checkpoint")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=200, help="images per set")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--samplers", nargs="+", default=["ddim50"], choices=SAMPLERS)
    ap.add_argument("--precisions", nargs="+", default=["bf16", "fp16"], choices=[k for k in DTYPES if k != "fp32"])
    ap.add_argument("--out", default=str(ROOT / "bench/precision"), help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    if args.n < 20:
        raise SystemExit(f"--n {args.n}: need at least 20 images per set for an interval")

    nb = load_defs()
    device = torch.device(args.device)
    run = json.loads(Path(args.results).read_text())
    cfg = argparse.Namespace(**run["config"])
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    shape = tuple(ckpt["run_config"]["image_shape"])
    if ckpt["run_config"]["base_channels"] != cfg.base_channels:
        raise SystemExit(f"{args.checkpoint} was not written by the run in {args.results}")
    ema = torch.optim.swa_utils.AveragedModel(nb.build_model(cfg, shape))
    ema.load_state_dict(ckpt["ema"])
    model = ema.module.to(device).eval()
    schedule = nb.make_schedule(cfg.schedule, cfg.T, device)

    fid_net, source = nb.fid_feature_extractor(device)
    if fid_net is None:
        raise SystemExit(source)
    test = nb.load_images(cfg.dataset, str(ROOT / cfg.data_dir), train=False)
    reference = nb.inception_features(fid_net, test[:cfg.fid_real_n], 32 if device.type == "cpu" else 200, device,
                                      desc="reference")

    rows, record = [], {"checkpoint": args.checkpoint, "run": run.get("run_id"), "device": str(device),
                        "torch": torch.__version__, "n": args.n, "fid_real_n": cfg.fid_real_n, "results": []}
    for name in args.samplers:
        kind, steps = SAMPLERS[name]
        sampler = nb.make_sampler(schedule, model, kind, steps, cfg.clip_sample, cfg.variance_type)
        sets, seconds = {}, {}
        for precision in ["fp32"] + args.precisions:
            t0 = time.perf_counter()
            sets[precision] = nb.generate(sampler, args.n, args.batch, shape, cfg.seed, device,
                                          desc=f"{name} {precision}", amp_dtype=DTYPES[precision])
            seconds[precision] = time.perf_counter() - t0
        features = {p: nb.inception_features(fid_net, s, 32, device) for p, s in sets.items()}
        for precision in args.precisions:
            gap = nb.fid_gap(features[precision], features["fp32"], reference)
            moved = (sets[precision].float() - sets["fp32"].float()).abs()
            result = dict(sampler=name, precision=precision, fid=gap["fid_a"], fid_fp32=gap["fid_b"], gap=gap["gap"],
                          lo=gap["low"], hi=gap["high"], mean_abs_grey=float(moved.mean()),
                          share_images_off_by_32=float((moved.flatten(1).amax(1) > 32).float().mean()),
                          seconds=seconds[precision], seconds_fp32=seconds["fp32"])
            record["results"].append(result)
            print(json.dumps(result))
            Path(args.out + ".json").write_text(json.dumps(record, indent=1) + "\n")

    lines = [f"# Sampling precision: same checkpoint, same x_T ({record['device']}, torch {record['torch']})", "",
             f"Checkpoint of run {record['run']}; N = {args.n} generated images per set, FID against "
             f"{cfg.fid_real_n} test images; the gap is FID(precision) - FID(fp32) with its paired 95% interval.", "",
             "| sampler | precision | FID | FID fp32 | gap (95% interval) | mean abs. change (grey levels) | "
             "images with a pixel off by >32 | time vs fp32 |", "|---|---|---|---|---|---|---|---|"]
    for r in record["results"]:
        lines.append(f"| {r['sampler']} | {r['precision']} | {r['fid']:.2f} | {r['fid_fp32']:.2f} | "
                     f"{r['gap']:+.2f} ({r['lo']:+.2f} to {r['hi']:+.2f}) | {r['mean_abs_grey']:.2f} | "
                     f"{100 * r['share_images_off_by_32']:.0f}% | {r['seconds'] / r['seconds_fp32']:.1f}x |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
