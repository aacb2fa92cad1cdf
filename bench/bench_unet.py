#!/usr/bin/env python3
"""The notebook's U-Net against diffusers' UNet2DModel at exactly equal parameter counts.

Both networks are built at each notebook profile's size (read from the notebook's `defs` cells at
run time) and timed with one shared loop:
  training  = q_sample, forward, MSE on the noise, backward, AdamW step   (images/s)
  sampling  = one network evaluation under no_grad, as in every sampler step (images/s)
Rows are measured interleaved (round r times every row once, in a rotated order), after warm-up;
a row's number is the median over rounds, and its ratio to the notebook baseline is the median of
the per-round ratios, so a change of background load hits both sides of a ratio alike.

The diffusers twin computes the same function: after copying its weights into the notebook's
U-Net, both give the same output (checked here, and reported as "max |diff|").
The notebook-only rows try the speed-ups of the issue, one at a time and then together. Every row's
AdamW is fused on CUDA, as the notebook's make_train_state makes it.

Usage: python bench/bench_unet.py [--device cpu|cuda] [--profiles cpu,full] [--batch 128]
       [--windows 5] [--compile] [--smoke] [--out bench.md]   (--out also writes bench.json)
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbdefs import build_unet, load_defs  # noqa: E402

IMAGE_SHAPE = (1, 28, 28)   # Fashion-MNIST, the notebook's default data set


# --- diffusers twin --------------------------------------------------------------------------
def diffusers_available():
    """(module, None) or (None, reason)."""
    try:
        import diffusers
        from diffusers import UNet2DModel  # noqa: F401
        return diffusers, None
    except Exception as err:  # not installed, or a broken install
        return None, f"diffusers is not importable ({type(err).__name__}: {err}); pip install diffusers"


def diffusers_kwargs(profile, in_channels=1):
    """UNet2DModel arguments that rebuild the notebook's U-Net layer for layer (same parameter count)."""
    channels = tuple(profile["base_channels"] * m for m in profile["channel_mults"])
    return dict(
        sample_size=IMAGE_SHAPE[1], in_channels=in_channels, out_channels=in_channels,
        block_out_channels=channels, layers_per_block=profile["num_res_blocks"],
        down_block_types=("DownBlock2D",) * len(channels),     # residual blocks + strided-conv downsampler
        up_block_types=("UpBlock2D",) * len(channels),         # residual blocks + nearest-upsample conv
        mid_block_type="UNetMidBlock2D", add_attention=True,   # resnet, self-attention, resnet
        attention_head_dim=channels[-1] // 4,                  # 4 heads, as nn.MultiheadAttention(c, 4)
        norm_num_groups=8, norm_eps=1e-5,                      # GroupNorm(8, c) everywhere
        time_embedding_type="positional", flip_sin_to_cos=False, freq_shift=0,  # [sin, cos], 1/10000^(i/half)
        act_fn="silu", dropout=0.0, downsample_padding=1, resnet_time_scale_shift="default")


class DiffusersUNet(nn.Module):
    """UNet2DModel behind the notebook's call signature model(x_t, t) -> eps."""

    def __init__(self, profile, in_channels=1):
        super().__init__()
        from diffusers import UNet2DModel
        self.net = UNet2DModel(**diffusers_kwargs(profile, in_channels))

    def forward(self, x, t):
        return self.net(x, t, return_dict=False)[0]


def copy_diffusers_into_notebook(twin, unet, nb):
    """Load the diffusers twin's weights into the notebook's U-Net (layer for layer), in place."""
    d = twin.net
    def units_nb():
        yield from (unet.time_mlp[0], unet.time_mlp[2], unet.stem)
        for layer in unet.down:
            yield layer
        yield from (unet.mid1, unet.mid_attn, unet.mid2)
        for layer in unet.up:
            yield layer[1] if isinstance(layer, nn.Sequential) else layer   # (Upsample, Conv2d)
        yield from (unet.out[0], unet.out[2])

    def units_d():
        yield from (d.time_embedding.linear_1, d.time_embedding.linear_2, d.conv_in)
        for block in d.down_blocks:
            yield from block.resnets
            if block.downsamplers is not None:
                yield block.downsamplers[0].conv
        yield from (d.mid_block.resnets[0], d.mid_block.attentions[0], d.mid_block.resnets[1])
        for block in d.up_blocks:
            yield from block.resnets
            if block.upsamplers is not None:
                yield block.upsamplers[0].conv
        yield from (d.conv_norm_out, d.conv_out)

    pairs = list(zip(units_nb(), units_d(), strict=True))
    with torch.no_grad():
        for mine, theirs in pairs:
            if isinstance(mine, nb.ResidualBlock):
                for a, b in ((mine.norm1, theirs.norm1), (mine.conv1, theirs.conv1), (mine.emb[1], theirs.time_emb_proj),
                             (mine.norm2, theirs.norm2), (mine.conv2, theirs.conv2)):
                    a.load_state_dict(b.state_dict())
                if theirs.conv_shortcut is not None:
                    mine.skip.load_state_dict(theirs.conv_shortcut.state_dict())
            elif isinstance(mine, nb.SelfAttention):
                mine.norm.load_state_dict(theirs.group_norm.state_dict())
                mine.attn.in_proj_weight.copy_(torch.cat([theirs.to_q.weight, theirs.to_k.weight, theirs.to_v.weight]))
                mine.attn.in_proj_bias.copy_(torch.cat([theirs.to_q.bias, theirs.to_k.bias, theirs.to_v.bias]))
                mine.attn.out_proj.load_state_dict(theirs.to_out[0].state_dict())
            else:
                mine.load_state_dict(theirs.state_dict())


# --- the SDPA variant of the notebook's SelfAttention (a monkeypatch, for measurement only) ----
def sdpa_self_attention_forward(self, x):
    """SelfAttention.forward with q, k, v from the same in_proj weights and F.scaled_dot_product_attention."""
    B, C, H, W = x.shape
    heads = self.attn.num_heads
    h = self.norm(x).flatten(2).transpose(1, 2)                                    # (B, HW, C)
    qkv = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias)             # (B, HW, 3C)
    q, k, v = qkv.view(B, H * W, 3, heads, C // heads).permute(2, 0, 3, 1, 4)      # 3 x (B, heads, HW, C/heads)
    h = F.scaled_dot_product_attention(q, k, v)                                    # (B, heads, HW, C/heads)
    h = self.attn.out_proj(h.transpose(1, 2).reshape(B, H * W, C))                 # (B, HW, C)
    return x + h.transpose(1, 2).reshape(B, C, H, W)


def use_sdpa_attention(model, nb):
    """Give every SelfAttention of `model` the SDPA forward (per instance: other models keep theirs)."""
    for module in model.modules():
        if isinstance(module, nb.SelfAttention):
            module.forward = types.MethodType(sdpa_self_attention_forward, module)
    return model


# --- variants ----------------------------------------------------------------------------------
class Variant:
    def __init__(self, name, arch, note, channels_last=False, sdpa=False, compile=False):
        self.name, self.arch, self.note = name, arch, note
        self.channels_last, self.sdpa, self.compile = channels_last, sdpa, compile


def variants_for(with_compile, have_diffusers, compile_mode="default"):
    compiled = f"torch.compile(model, mode={compile_mode!r})"
    rows = [Variant("notebook", "notebook", "the notebook's UNet as it is (nn.MultiheadAttention)")]
    if have_diffusers:
        rows.append(Variant("diffusers", "diffusers", "UNet2DModel with the same layers and parameter count"))
    rows += [Variant("notebook + channels_last", "notebook", "weights and inputs in channels_last", channels_last=True),
             Variant("notebook + SDPA attention", "notebook", "SelfAttention via F.scaled_dot_product_attention (monkeypatch)", sdpa=True)]
    if with_compile:
        rows.append(Variant("notebook + torch.compile", "notebook", compiled, compile=True))
        if have_diffusers:
            rows.append(Variant("diffusers + torch.compile", "diffusers", compiled, compile=True))
    rows.append(Variant("notebook + all" + (" + compile" if with_compile else ""), "notebook",
                        "channels_last + SDPA" + (" + torch.compile" if with_compile else ""),
                        channels_last=True, sdpa=True, compile=with_compile))
    return rows


class Runner:
    """One variant's model, optimizer and step functions at one profile's size."""

    def __init__(self, variant, nb, profile, device, amp, batch, sample_batch, seed=0, compile_mode="default"):
        self.variant, self.failed, self.results = variant, None, {}
        torch.manual_seed(seed)
        model = build_unet(nb, profile, IMAGE_SHAPE[0]) if variant.arch == "notebook" else DiffusersUNet(profile, IMAGE_SHAPE[0])
        if variant.sdpa:
            use_sdpa_attention(model, nb)
        self.memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
        self.model = model.to(device=device, memory_format=self.memory_format)
        self.forward = torch.compile(self.model, mode=compile_mode) if variant.compile else self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.0,
                                           fused=device.type == "cuda")      # as the notebook's make_train_state
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
        self.device, self.amp, self.nb = device, amp, nb
        self.schedule = nb.make_schedule("linear", profile["T"], device)
        g = torch.Generator(device).manual_seed(seed)
        self.x0 = (torch.rand((batch, *IMAGE_SHAPE), generator=g, device=device) * 2 - 1)
        self.x_sample = torch.randn((sample_batch, *IMAGE_SHAPE), generator=g, device=device).contiguous(memory_format=self.memory_format)
        self.t_sample = torch.full((sample_batch,), profile["T"] // 2, device=device, dtype=torch.long)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    def train_step(self):
        x0 = self.x0
        t = torch.randint(0, self.schedule.T, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.nb.q_sample(self.schedule, x0, t, noise).contiguous(memory_format=self.memory_format)
        with self.autocast():
            loss = F.mse_loss(self.forward(x_t, t).float(), noise)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def sample_step(self):
        with torch.no_grad(), self.autocast():
            self.forward(self.x_sample, self.t_sample)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_window(fn, steps, device, cpu_time=None):
    """Wall seconds of `steps` calls; with a list `cpu_time`, also appends this process's CPU seconds."""
    synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    synchronize(device)
    if cpu_time is not None:
        cpu_time.append(time.process_time() - c0)
    return time.perf_counter() - t0


def short(err):
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def measure(runners, mode, device, images_per_step, warmup, windows, window_s, fixed_steps, log):
    """Interleaved windows over `runners` for mode "train" or "sample"; fills runner.results[mode]."""
    active = []
    for r in runners:
        if r.failed:
            continue
        fn = r.train_step if mode == "train" else r.sample_step
        (r.model.train if mode == "train" else r.model.eval)()
        try:
            t0 = time.perf_counter()
            timed_window(fn, warmup, device)      # includes compilation for compiled rows
            r.results[mode] = dict(warmup_s=time.perf_counter() - t0)
            active.append((r, fn))
        except Exception as err:
            r.failed = f"{mode} warm-up failed: {short(err)}"
            log(f"  {r.variant.name}: {r.failed}")
    if not active:
        return 0
    steps = fixed_steps
    if steps is None:                              # calibrate: the slowest row takes ~window_s per window
        slowest = max(timed_window(fn, 1, device) for _, fn in active)
        steps = max(1, min(2000, round(window_s / max(slowest, 1e-6))))
    for r, _ in active:
        r.results[mode]["windows"], r.results[mode]["cpu_windows"] = [], []
    for w in range(windows):
        order = active[w % len(active):] + active[:w % len(active)]
        for r, fn in order:
            if r.failed:
                continue
            try:
                cpu = []
                seconds = timed_window(fn, steps, device, cpu)
                r.results[mode]["windows"].append(steps * images_per_step / seconds)
                r.results[mode]["cpu_windows"].append(steps * images_per_step / max(cpu[0], 1e-9))
            except Exception as err:
                r.failed = f"{mode} failed in window {w}: {short(err)}"
                log(f"  {r.variant.name}: {r.failed}")
    return steps


def paired_ratio(a, b):
    """Median over rounds of a[i] / b[i] (None if either is missing)."""
    pairs = [x / y for x, y in zip(a, b) if y]
    return statistics.median(pairs) if pairs else None


def equivalence(nb, profile, have_diffusers):
    """Max |diff| between the diffusers twin and the notebook U-Net holding its weights, and between
    the SDPA monkeypatch and nn.MultiheadAttention (CPU, fp32, batch 2)."""
    torch.manual_seed(1)
    x, t = torch.randn(2, *IMAGE_SHAPE), torch.tensor([3, profile["T"] - 1])
    unet = build_unet(nb, profile, IMAGE_SHAPE[0]).eval()
    out = {"params_notebook": sum(p.numel() for p in unet.parameters())}
    if have_diffusers:
        twin = DiffusersUNet(profile, IMAGE_SHAPE[0]).eval()
        out["params_diffusers"] = sum(p.numel() for p in twin.parameters())
        copy_diffusers_into_notebook(twin, unet, nb)   # also gives the zero-initialised output conv weights
        with torch.no_grad():
            ref = twin(x, t)
            out["diffusers_vs_notebook"] = float((ref - unet(x, t)).abs().max())
            out["output_scale"] = float(ref.abs().max())
    else:
        nn.init.normal_(unet.out[-1].weight, std=0.02)
    patched = use_sdpa_attention(build_unet(nb, profile, IMAGE_SHAPE[0]).eval(), nb)
    patched.load_state_dict(unet.state_dict())
    with torch.no_grad():
        out["sdpa_vs_mha"] = float((patched(x, t) - unet(x, t)).abs().max())
    return out


def fmt(x, spec=",.0f"):
    return "n/a" if x is None else format(x, spec)


def markdown(report):
    lines = ["## U-Net throughput: the notebook's U-Net vs diffusers' UNet2DModel (equal parameters)", "",
             f"- device: {report['device']}; torch {report['torch']}; diffusers {report['diffusers'] or 'not installed'}; "
             f"AMP: {report['amp']}",
             f"- batch: training {report['batch']}, sampling {report['sample_batch']}; images {'x'.join(map(str, IMAGE_SHAPE))}; "
             f"{report['windows']} interleaved windows of ~{report['window_s']} s after {report['warmup']} warm-up steps "
             f"(median; 'x notebook' = median of per-window ratios"
             + ("; images per CPU-s counts this process's CPU time, which other processes on the same cores "
                "do not inflate" if report["device"].startswith("CPU") else "") + ")",
             f"- load average (1, 5, 15 min): before {report['load_before']}, after {report['load_after']}; "
             f"{report['cpu_threads']} CPU threads",
             "", "| profile | notebook params | diffusers params | notebook/diffusers | same function (max abs diff) | SDPA vs MHA (max abs diff) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, p in report["profiles"].items():
        eq = p["equivalence"]
        lines.append(f"| {name} | {p['params_notebook']:,} | {fmt(p['params_diffusers'], ',d')} | "
                     f"{fmt(p['params_ratio'], '.4f')} | {fmt(eq.get('diffusers_vs_notebook'), '.1e')} | {fmt(eq.get('sdpa_vs_mha'), '.1e')} |")
    cpu = report["device"].startswith("CPU")    # CPU time: robust where other processes share the cores
    lines += ["", "| profile | phase | variant | images/s (median) | min-max | x notebook |"
              + (" images per CPU-s | x notebook (CPU time) |" if cpu else "") + " notes |",
              "|---|---|---|---:|---:|---:|" + ("---:|---:|" if cpu else "") + "---|"]
    for name, p in report["profiles"].items():
        for mode in ("train", "sample"):
            for row in p["rows"]:
                res = row["results"].get(mode, {})
                w = res.get("windows") or []
                med = statistics.median(w) if w else None
                rng = f"{min(w):,.0f}-{max(w):,.0f}" if w else ""
                note = row.get("failed") or row["note"]
                extra = f" {fmt(res.get('cpu_median'), ',.1f')} | {fmt(res.get('x_notebook_cpu'), '.2f')} |" if cpu else ""
                lines.append(f"| {name} | {mode} | {row['name']} | {fmt(med)} | {rng} | {fmt(res.get('x_notebook'), '.2f')} |{extra} {note} |")
    lines += ["", "| profile | phase | notebook / diffusers | best notebook row / diffusers |"
              + (" notebook / diffusers (CPU time) | best / diffusers (CPU time) |" if cpu else ""),
              "|---|---|---:|---:|" + ("---:|---:|" if cpu else "")]
    for name, p in report["profiles"].items():
        for mode in ("train", "sample"):
            s = p["summary"].get(mode, {})
            lines.append(f"| {name} | {mode} | {fmt(s.get('notebook_over_diffusers'), '.2f')} | "
                         f"{fmt(s.get('best_over_diffusers'), '.2f')} ({s.get('best_row', 'n/a')}) |"
                         + (f" {fmt(s.get('notebook_over_diffusers_cpu'), '.2f')} |"
                            f" {fmt(s.get('best_over_diffusers_cpu'), '.2f')} |" if cpu else ""))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--profiles", default="cpu,full", help="comma-separated notebook profiles (sizes)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default 128; --smoke: 4)")
    parser.add_argument("--sample-batch", type=int, default=None, help="sampling batch (default: --batch)")
    parser.add_argument("--windows", type=int, default=None, help="interleaved measurement rounds (default 5)")
    parser.add_argument("--window-s", type=float, default=2.0, help="target seconds per window")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps per row (default 3; compile rows compile here)")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (falls back to 'failed: reason')")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode: default, reduce-overhead (CUDA graphs), max-autotune-no-cudagraphs")
    parser.add_argument("--amp", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                        help="the notebook's autocast_dtype(device, MIXED_PRECISION); auto: its own choice")
    parser.add_argument("--smoke", action="store_true", help="a few steps only (CI): batch 4, 2 windows of 1 step")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    parser.add_argument("--out", type=Path, default=None, help="write the table to FILE (markdown) and FILE.json")
    args = parser.parse_args(argv)
    batch = args.batch or (4 if args.smoke else 128)
    sample_batch = args.sample_batch or batch
    windows = args.windows or (2 if args.smoke else 5)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 3)
    fixed_steps = 1 if args.smoke else None
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU here")

    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    nb = load_defs()
    diffusers, why_not = diffusers_available()
    if diffusers is None:
        log(f"diffusers rows skipped: {why_not}")
    else:
        log(f"diffusers {diffusers.__version__} from {Path(diffusers.__file__).parent}")
    amp = nb.autocast_dtype(device, args.amp)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    report = dict(command=" ".join(sys.argv[1:] if argv is None else argv), device=device_name, torch=torch.__version__, diffusers=getattr(diffusers, "__version__", None),
                  diffusers_missing=why_not, amp=str(amp).replace("torch.", "") if amp else "none (fp32)",
                  batch=batch, sample_batch=sample_batch, windows=windows, window_s=args.window_s, warmup=warmup,
                  smoke=args.smoke, compile=args.compile and args.compile_mode, cpu_threads=torch.get_num_threads(),
                  load_before=[round(x, 2) for x in os.getloadavg()], profiles={})
    for name in [p.strip() for p in args.profiles.split(",") if p.strip()]:
        if name not in nb.PROFILES:
            parser.error(f"--profiles: {name!r} is not a notebook profile ({list(nb.PROFILES)})")
        profile = nb.PROFILES[name]
        eq = equivalence(nb, profile, diffusers is not None)
        params_nb, params_d = eq.pop("params_notebook"), eq.pop("params_diffusers", None)
        entry = dict(sizes={k: profile[k] for k in ("base_channels", "channel_mults", "num_res_blocks", "T")},
                     params_notebook=params_nb, params_diffusers=params_d,
                     params_ratio=params_nb / params_d if params_d else None,
                     diffusers_kwargs=diffusers_kwargs(profile) if diffusers else None, equivalence=eq)
        log(f"[{name}] params notebook {params_nb:,}  diffusers {params_d}  equivalence {entry['equivalence']}")
        runners = [Runner(v, nb, profile, device, amp, batch, sample_batch, compile_mode=args.compile_mode)
                   for v in variants_for(args.compile, diffusers is not None, args.compile_mode)]
        steps = {}
        for mode, per_step in (("train", batch), ("sample", sample_batch)):
            t0 = time.perf_counter()
            steps[mode] = measure(runners, mode, device, per_step, warmup, windows, args.window_s, fixed_steps, log)
            log(f"[{name}] {mode}: {steps[mode]} steps per window, {time.perf_counter() - t0:.0f} s")
        base = next(r for r in runners if r.variant.name == "notebook")
        twin = next((r for r in runners if r.variant.name == "diffusers"), None)
        summary = {}
        for mode in ("train", "sample"):
            bw = base.results.get(mode, {}).get("windows", [])
            bc = base.results.get(mode, {}).get("cpu_windows", [])
            for r in runners:
                res = r.results.get(mode, {})
                if res.get("windows"):
                    res["median"] = statistics.median(res["windows"])
                    res["x_notebook"] = paired_ratio(res["windows"], bw)
                    res["cpu_median"] = statistics.median(res["cpu_windows"])
                    res["x_notebook_cpu"] = paired_ratio(res["cpu_windows"], bc)
            if twin and twin.results.get(mode, {}).get("windows"):
                tw = twin.results[mode]["windows"]
                tc = twin.results[mode]["cpu_windows"]
                cands = [r for r in runners if r.variant.arch == "notebook" and r.results.get(mode, {}).get("windows")]
                key = "cpu_median" if device.type == "cpu" else "median"   # CPU time: robust to other load
                best = max(cands, key=lambda r: r.results[mode][key])
                summary[mode] = dict(notebook_over_diffusers=paired_ratio(bw, tw),
                                     notebook_over_diffusers_cpu=paired_ratio(bc, tc),
                                     best_over_diffusers=paired_ratio(best.results[mode]["windows"], tw),
                                     best_over_diffusers_cpu=paired_ratio(best.results[mode]["cpu_windows"], tc),
                                     best_row=best.variant.name)
        entry.update(steps_per_window=steps, summary=summary,
                     rows=[dict(name=r.variant.name, arch=r.variant.arch, note=r.variant.note, failed=r.failed,
                                results=r.results) for r in runners])
        report["profiles"][name] = entry
        del runners
        report["load_after"] = [round(x, 2) for x in os.getloadavg()]
        write(report, args.out)            # after every profile: a run stopped by a time limit keeps its rows
    print(markdown(report))
    return 0


def write(report, out):
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(report))
        out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
