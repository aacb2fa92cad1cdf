"""Two U-Net layouts at (nearly) equal FLOPs, same seed, same data order, same steps: which learns better?

Candidate A keeps the channel width even across resolutions (the classic DDPM layout, scaled down);
candidate B is narrow at 28x28, where every conv is 16x dearer per channel^2 than at 7x7, and wider
below. Each is trained for --steps steps on the CPU with the notebook's own code, then scored with FID
(DDIM-20, --n samples vs --n test images). Writes the markdown table to --out.

    .venv/bin/python bench/compare_designs.py --steps 200 --n 1000 --out bench/design_comparison.md
"""
import argparse, platform, sys, time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbdefs import ROOT, load_defs  # noqa: E402  (the notebook's `defs` cells)

DESIGNS = {  # name -> (base_channels, channel_mults, num_res_blocks); CPU-sized twins of the GPU candidates
    "A: even width (24; 1,2,2)": (24, (1, 2, 2), 1),
    "B: narrow top (16; 1,3,4)": (16, (1, 3, 4), 1),
}


def forward_gflop(nb, model, shape):
    x, t = torch.randn(1, *shape), torch.zeros(1, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, t)
    return counter.get_total_flops() / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--n", type=int, default=1000, help="generated and test images behind each FID")
    ap.add_argument("--ddim", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(ROOT / "data"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    nb, device = load_defs(), torch.device("cpu")
    train_images = nb.load_images("FashionMNIST", args.data, train=True)
    test_images = nb.load_images("FashionMNIST", args.data, train=False)[: args.n]
    shape, schedule = tuple(train_images.shape[1:]), nb.make_schedule("linear", 1000)
    net, source = nb.fid_feature_extractor()
    if net is None:
        sys.exit(f"no FID: {source}")
    cache = Path(args.data) / f"fid_features_FashionMNIST_test{args.n}_{source}.pt"
    reference = nb.fid_reference(net, test_images, cache, 32, device)
    rows = []
    for name, (base, mults, blocks) in DESIGNS.items():
        nb.seed_everything(args.seed)
        model = nb.UNet(shape[0], base, mults, blocks)
        gflop = forward_gflop(nb, model, shape)   # draws from the RNG: keep it here, so reruns match the table
        state = nb.make_train_state(model, 1e-3, 100, 0.999, device)
        t0 = time.perf_counter()
        nb.train(state, schedule, train_images, steps=args.steps, batch_size=args.batch, seed=args.seed,
                 desc=name[:1])
        train_s = time.perf_counter() - t0
        sampler = nb.make_sampler(schedule, state.ema.module.eval(), "ddim", args.ddim)
        samples = nb.generate(sampler, args.n, 250, shape, args.seed, device)
        fid = nb.frechet_distance(nb.inception_features(net, samples, 32, device), reference)
        rows.append(dict(design=name, params_m=sum(p.numel() for p in model.parameters()) / 1e6, gflop_per_forward=gflop,
                         train_s=train_s, final_loss=sum(state.losses[-50:]) / 50, fid=fid))
        print(rows[-1], flush=True)
    header = (f"Designs at near-equal FLOPs: {args.steps} steps of {args.batch}, seed {args.seed}, "
              f"FID of {args.n} DDIM-{args.ddim} samples vs {args.n} test images, "
              f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}")
    table = [header, "", "| design | params | GFLOP/forward | train s | final loss | FID |", "|---|---|---|---|---|---|"]
    table += [f"| {r['design']} | {r['params_m']:.2f}M | {r['gflop_per_forward']:.3f} | {r['train_s']:.0f} | "
              f"{r['final_loss']:.4f} | {r['fid']:.1f} |" for r in rows]
    print("\n".join(table))
    if args.out:
        Path(args.out).write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
