"""Which training recipe gives the `cpu` profile the best samples for the same CPU time?

Two parts, both on the CPU with the notebook's own code (its `defs` cells, see nbdefs.py):

1. Speed: training images/s of the cpu profile's U-Net at other batch sizes, widths and depths, with
   channels_last, one thread instead of all, and torch.compile where it works. Run it on an idle machine:
   these rows decide how many steps a recipe gets for the same time.
2. Quality: each recipe is trained for the same time budget (a fraction of the cpu profile's training:
   `--fraction` of its images at the baseline's speed, turned into steps with each recipe's own speed),
   then scored by FID of DDIM-50 with eta = 0 and eta = 1 (N = `--n`, same noise for every recipe)
   against the notebook's reference (its first 1,000 test images), with the notebook's paired-bootstrap
   95% interval for each recipe's gap to the baseline, and the FID of N training images as the floor.
   Every recipe keeps the coursework's method: the epsilon-MSE loss of Algorithm 1, T = 1000.

Results go to --out (.json, rewritten after every row, and .md). Every row is kept, winners and losers.

    .venv/bin/python bench/cpu_recipes.py --fraction 0.2 --n 250 --out bench/cpu_recipes
"""
import argparse, json, platform, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbdefs import ROOT, load_defs  # noqa: E402  (the notebook's `defs` cells)

# name -> changes to the cpu profile; lr_decay / lr / batch_size / layout are what the study varies
RECIPES = {
    "baseline: constant LR 1e-3 (cpu profile before)": dict(),
    "cosine decay to 5%, peak 1e-3": dict(lr_decay="cosine"),
    "cosine decay to 5%, peak 2e-3": dict(lr_decay="cosine", lr=2e-3),
    "cosine decay to 5%, peak 1e-3, batch 64": dict(lr_decay="cosine", batch_size=64),
    "linear decay to 5%, peak 1e-3": dict(lr_decay="linear"),
    "constant LR 2e-3": dict(lr=2e-3),
}
BASE_ROW = "cpu profile (24; 1,2,2; 1 block), batch 128"
SPEED_ROWS = {  # name -> (changes to the profile, options)
    BASE_ROW: (dict(), {}),
    "batch 64": (dict(batch_size=64), {}),
    "batch 256": (dict(batch_size=256), {}),
    "wider: 32 channels": (dict(base_channels=32), {}),
    "deeper: 2 blocks per level": (dict(num_res_blocks=2), {}),
    "channels_last": (dict(), {"channels_last": True}),
    "1 thread": (dict(), {"threads": 1}),
    "torch.compile": (dict(), {"compile": True}),
}


def recipe_config(nb, changes, profile="cpu"):
    cfg = dict(nb.PROFILES[profile], lr_decay="none")
    cfg.update(changes)
    return cfg


def train_state(nb, cfg, shape, device, total_steps):
    model = nb.UNet(shape[0], cfg["base_channels"], tuple(cfg["channel_mults"]), cfg["num_res_blocks"])
    return nb.make_train_state(model, cfg["lr"], cfg["warmup_steps"], 0.999, device, "fp32",
                               decay=cfg["lr_decay"], total_steps=total_steps)


def images_per_second(nb, cfg, options, images, schedule, shape, device, window_s=2.0):
    """Training images/s (median of 3 windows of at least `window_s`), after warm-up, of a throwaway model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(options.get("threads", threads))
    try:
        with torch.random.fork_rng():
            state = train_state(nb, cfg, shape, device, None)
            if options.get("channels_last"):
                state.model.to(memory_format=torch.channels_last)
            if options.get("compile"):
                state.model = torch.compile(state.model)
            step = lambda: nb.train(state, schedule, images, steps=state.step + 1, batch_size=cfg["batch_size"],
                                    seed=0, log_every=1, progress=False)
            t0 = time.perf_counter()
            step()                                             # compiles, where torch.compile is asked for
            first = time.perf_counter() - t0
            return cfg["batch_size"] / nb.seconds_per_call(step, device, windows=3, min_seconds=window_s), first
    finally:
        torch.set_num_threads(threads)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu", help="the notebook profile the recipes change (smoke: a test)")
    ap.add_argument("--window-s", type=float, default=2.0, help="seconds per timing window of the speed rows")
    ap.add_argument("--fraction", type=float, default=0.2, help="of the cpu profile's training images per recipe")
    ap.add_argument("--n", type=int, default=250, help="samples per FID (and training images for the floor)")
    ap.add_argument("--real-n", type=int, default=1000, help="test images behind the reference (the notebook's)")
    ap.add_argument("--recipes", default=None, help="comma-separated indices into RECIPES (default: all)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--data", default=str(ROOT / "data"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "cpu_recipes"))
    args = ap.parse_args(argv)
    if not 0 < args.fraction <= 1 or args.n < 2 or args.real_n < 2:
        sys.exit("--fraction must be in (0, 1], --n and --real-n at least 2")
    nb, device, seed = load_defs(), torch.device("cpu"), 0
    images = nb.load_images("FashionMNIST", args.data, train=True)     # uint8: training_batch maps it to [-1, 1]
    shape, schedule = tuple(images.shape[1:]), nb.make_schedule("linear", nb.PROFILES[args.profile]["T"])
    out = Path(args.out)
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    results.setdefault("machine", dict(profile=args.profile, cpu=platform.processor() or platform.machine(),
                                       threads=torch.get_num_threads(), torch=torch.__version__))
    save = lambda: out.with_suffix(".json").write_text(json.dumps(results, indent=1))

    if not args.skip_speed:
        results["speed"] = {}
        for name, (changes, options) in SPEED_ROWS.items():
            try:
                ips, first = images_per_second(nb, recipe_config(nb, changes, args.profile), options, images, schedule, shape,
                                               device, args.window_s)
                results["speed"][name] = dict(images_per_s=ips, first_step_s=first)
            except Exception as err:     # torch.compile needs a C++ compiler and a recent enough PyTorch
                results["speed"][name] = dict(error=f"{type(err).__name__}: {str(err).splitlines()[0][:120]}")
            print(name, results["speed"][name], flush=True)
            save()

    net, source = nb.fid_feature_extractor(device)
    if net is None:
        sys.exit(f"no FID: {source}")
    test = nb.load_images("FashionMNIST", args.data, train=False)[: args.real_n]
    cache = Path(args.data) / f"fid_features_FashionMNIST_test{args.real_n}_{source}.pt"   # the notebook's cache
    reference = nb.fid_reference(net, test, cache, 32, device)
    if "floor" not in results or results["floor"]["n"] != args.n:
        real = nb.load_images("FashionMNIST", args.data, train=True)[torch.randperm(60_000, generator=torch.Generator().manual_seed(1))[: args.n]]
        results["floor"] = dict(n=args.n, fid=nb.frechet_distance(nb.inception_features(net, real, 32, device), reference))
        save()

    base = recipe_config(nb, {}, args.profile)
    budget_images = args.fraction * base["train_steps"] * base["batch_size"]
    features, chosen = {}, list(RECIPES.items())
    if args.recipes:
        chosen = [chosen[int(i)] for i in args.recipes.split(",")]
    results.setdefault("recipes", {})
    speed = results.get("speed", {})
    for name, changes in chosen:
        cfg = recipe_config(nb, changes, args.profile)
        ratio = 1.0
        if "batch_size" in changes:         # same time: images scale with this batch's measured speed
            key = f"batch {cfg['batch_size']}"
            ratio = speed[key]["images_per_s"] / speed[BASE_ROW]["images_per_s"]
        steps = max(1, round(budget_images * ratio / cfg["batch_size"]))
        cfg["warmup_steps"] = max(1, round(cfg["warmup_steps"] * args.fraction * base["batch_size"] / cfg["batch_size"]))
        nb.seed_everything(seed)
        state = train_state(nb, cfg, shape, device, steps)
        t0 = time.perf_counter()
        nb.train(state, schedule, images, steps=steps, batch_size=cfg["batch_size"], seed=seed, log_every=10,
                 desc=name[:24])
        row = dict(changes=changes, steps=steps, warmup_steps=cfg["warmup_steps"], train_s=time.perf_counter() - t0,
                   final_loss=sum(state.losses[-50:]) / len(state.losses[-50:]), fid={}, gap={})
        model = state.ema.module.eval()
        for eta in (0.0, 1.0):
            sampler = nb.make_sampler(schedule, model, "ddim", 50, True, eta=eta)
            samples = nb.generate(sampler, args.n, 250, shape, seed, device, desc=f"DDIM-50 eta={eta:g}")
            features[name, eta] = nb.inception_features(net, samples, 32, device)
            row["fid"][f"{eta:g}"] = nb.frechet_distance(features[name, eta], reference)
            baseline = (chosen[0][0], eta)
            if baseline in features and name != chosen[0][0]:   # gap = baseline - recipe: > 0 means the recipe is better
                gap = nb.fid_gap(features[baseline], features[name, eta], reference, seed=seed)
                row["gap"][f"{eta:g}"] = {k: gap[k] for k in ("gap", "low", "high")}
        results["recipes"][name] = row
        print(name, row, flush=True)
        save()
    out.with_suffix(".md").write_text(markdown(results, args))


def markdown(results, args):
    m = results["machine"]
    lines = [f"CPU recipe study: {m['cpu']} CPU, {m['threads']} threads, torch {m['torch']}.", ""]
    if results.get("speed"):
        base = results["speed"][BASE_ROW]["images_per_s"]
        lines += ["Training speed (median of 3 windows of at least 2 s after a warm-up step):", "",
                  "| variant | images/s | vs cpu profile | first step s |", "|---|---:|---:|---:|"]
        for name, r in results["speed"].items():
            lines.append(f"| {name} | {r['images_per_s']:.0f} | {r['images_per_s'] / base:.2f}x | {r['first_step_s']:.1f} |"
                         if "error" not in r else f"| {name} | failed: {r['error']} | | |")
        lines.append("")
    if results.get("recipes"):
        n, floor = results["floor"]["n"], results["floor"]["fid"]
        lines += [f"Recipes at equal time ({args.fraction:g} of the cpu profile's training), FID of N = {n} DDIM-50 "
                  f"samples vs {args.real_n:,} test images (floor: {n} training images, {floor:.1f}); gap to the baseline "
                  f"with its 95% paired-bootstrap interval, positive = better than the baseline. Every recipe trains the same "
                  f"number of images (its steps come from the speed table), so `train min` is only the wall time each "
                  f"took, longer where other work shared the machine:", "",
                  "| recipe | steps | train min | final loss | FID eta=0 | gap eta=0 | FID eta=1 | gap eta=1 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in results["recipes"].items():
            gaps = [f"{g['gap']:+.1f} ({g['low']:+.1f} to {g['high']:+.1f})" if (g := r["gap"].get(e)) else "-"
                    for e in ("0", "1")]
            lines.append(f"| {name} | {r['steps']} | {r['train_s'] / 60:.1f} | {r['final_loss']:.4f} | "
                         f"{r['fid']['0']:.1f} | {gaps[0]} | {r['fid']['1']:.1f} | {gaps[1]} |")
        lines += [f"| {name} | not run | | | | | | |" for name in RECIPES if name not in results["recipes"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
