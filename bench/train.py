"""Benchmark: training and sampling images/s per family, against plain reference loops (not a test).

    PYTHONPATH=src python bench/train.py [--steps 30] [--families gan,vae,diffusion,classifier] [--json out.json]
    PYTHONPATH=src python bench/train.py --precision [--steps 300] [--families gan,vae,diffusion] [--json out.json]

    PYTHONPATH=src python bench/train.py --equal-time 30 [--families gan,diffusion] [--quality-n 2000] [--json out.json]

`--equal-time MINUTES`: quality at equal wall time (the models issue's yardstick). For each family, the
project's recipe (the cpu scale's `training` section, else its `models` section) and the plain reference
recipe (`REFERENCE_RECIPES`: the PyTorch DCGAN example's hyper-parameters, diffusers' unconditional training
example's, the PyTorch VAE example's) each train on all 60,000 digits with the project trainer for the same
wall time; the project's run is also scored at half that time. Printed: MNIST-FID and recognised share of
each (`--quality-n` samples against the 10,000 test digits), their ratio, and whether the project's recipe
at half the time already reaches the reference's final FID (the issue's target).

`--precision`: is `precision="auto"` the faster choice on this CPU, at no cost in quality? For each family
at its cpu-scale size and batch, the project trainer runs the same steps (same seed, same batches) in fp32
and under bf16 autocast, in both memory formats; printed: images/s of each, and the MNIST-FID and recognised
share of 1,000 samples from each fp32/bf16 model at equal steps, then the choice `auto` makes and whether
it is the faster one. The CPU model and flags head the output.

For each family, in the same process and on the same data (MNIST training digits):
* reference: the architecture trained "the obvious way" — fp32, default memory format, a
  `DataLoader(TensorDataset(...), shuffle=True)` and the loop of the PyTorch DCGAN / VAE example or of
  diffusers' unconditional training example (noise, random t, `add_noise`, MSE, clip_grad_norm, AdamW,
  EMA), plus a plain classification loop;
* mnistmem: the project trainer's step (`training.TrainingRun.step` with the trainer's precision and memory
  format choices, batches sliced from a uint8 tensor, step-seeded RNG, EMA).
Rounds alternate reference and mnistmem steps so that load from other processes hits both alike; the
median step time is reported, with the mean loss over the last steps of each (same seed, same batches)
to show no quality loss. Sampling: reference = `generator(torch.randn(B, …))` (diffusion: the DDPM
1000-step loop of the example's pipeline, timed on a few steps and extrapolated, and the same DPM-Solver
loop written plainly); mnistmem = `mnistmem.sampling.sample` (per-sample seeds, fixed blocks).
Timings on a shared CPU are noisy; rerun on an idle machine for publishable numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch.utils.data import DataLoader, TensorDataset

from mnistmem import checkpoints, data, quality
from mnistmem.devices import hardware_summary, pick_device
from mnistmem.experiments import scales
from mnistmem.models import build_model
from mnistmem.models.base import to_model_input
from mnistmem.sampling import sample
from mnistmem.training import (
    TrainConfig,
    TrainingRun,
    read_metrics,
    resolve_channels_last,
    resolve_precision,
    step_seed,
    train,
)

BATCH = {"gan": 128, "vae": 128, "diffusion": 64, "classifier": 128}


# --------------------------------------------------------------------------------------- reference loops
def reference_step(family: str, model, opt, x: torch.Tensor, y: torch.Tensor, extra: dict) -> float:
    """One training step written the obvious way (fp32, contiguous tensors)."""
    if family == "gan":  # the PyTorch DCGAN example (BCE on probabilities, separate real/fake backward)
        netG, netD = model.generator, model.discriminator
        optD, optG = opt
        b = x.shape[0]
        netD.zero_grad()
        out = torch.sigmoid(netD(x))
        errD_real = F.binary_cross_entropy(out, torch.ones(b))
        errD_real.backward()
        fake = netG(torch.randn(b, model.nz, 1, 1))
        out = torch.sigmoid(netD(fake.detach()))
        errD_fake = F.binary_cross_entropy(out, torch.zeros(b))
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        errG = F.binary_cross_entropy(torch.sigmoid(netD(fake)), torch.ones(b))
        errG.backward()
        optG.step()
        return float(errD_real + errD_fake)
    if family == "vae":  # the PyTorch VAE example
        opt.zero_grad()
        mu, logvar = model.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = model.decoder(z)
        bce = F.binary_cross_entropy(torch.sigmoid(recon), (x + 1) / 2, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (bce + kld) / x.shape[0]
        loss.backward()
        opt.step()
        return float(loss)
    if family == "diffusion":  # diffusers examples/unconditional_image_generation/train_unconditional.py
        noise = torch.randn(x.shape)
        t = torch.randint(0, model.scheduler.config.num_train_timesteps, (x.shape[0],)).long()
        noisy = model.scheduler.add_noise(x, noise, t)
        pred = model.unet(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.unet.parameters(), 1.0)
        opt.step()
        extra["lr_scheduler"].step()
        opt.zero_grad()
        extra["ema"].step(model.unet.parameters())
        return float(loss)
    opt.zero_grad()  # classifier
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return float(loss)


def make_reference(family: str, lr: float):
    torch.manual_seed(0)
    model = build_model(family)
    model.train()
    extra: dict = {}
    if family == "gan":
        opt = (
            torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(model.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
        )
    elif family == "diffusion":
        from diffusers.optimization import get_scheduler
        from diffusers.training_utils import EMAModel

        opt = torch.optim.AdamW(model.unet.parameters(), lr=lr)
        extra["lr_scheduler"] = get_scheduler("constant", optimizer=opt)
        extra["ema"] = EMAModel(model.unet.parameters(), decay=0.995)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    return model, opt, extra


# ---------------------------------------------------------------------------------------- mnistmem loop
def make_mnistmem(family: str, device: torch.device):
    config = TrainConfig(model=family, batch_size=BATCH[family])
    precision = resolve_precision(config.precision, device)
    channels_last = resolve_channels_last(config, device)
    run = TrainingRun(config, device, channels_last)  # the seed-0 initial weights, the trainer's optimizers and EMA
    run.model.train()
    return run, precision, channels_last, config.lr


def bench_training(family: str, steps: int, device: torch.device) -> dict:
    images, labels = data.load_mnist("train")
    batch = BATCH[family]
    run, precision, channels_last, lr = make_mnistmem(family, device)
    ref_model, ref_opt, ref_extra = make_reference(family, lr)
    loader = iter(
        DataLoader(
            TensorDataset(to_model_input(images), torch.from_numpy(np.array(labels))),
            batch_size=batch,
            shuffle=True,
            drop_last=True,
        )
    )
    uint8_images, label_tensor = torch.from_numpy(np.array(images)), torch.from_numpy(np.array(labels))
    rng = np.random.default_rng(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    times = {"reference": [], "mnistmem": []}
    losses = {"reference": [], "mnistmem": []}
    for step in range(steps + 2):  # 2 warm-up rounds
        start = time.perf_counter()
        x, y = next(loader)
        losses["reference"].append(reference_step(family, ref_model, ref_opt, x, y, ref_extra))
        times["reference"].append(time.perf_counter() - start)

        start = time.perf_counter()
        rows = torch.from_numpy(rng.integers(0, len(labels), batch))
        x = to_model_input(uint8_images[rows], device).contiguous(memory_format=fmt)
        y = label_tensor[rows].to(device)
        torch.manual_seed(step_seed(0, step))
        out = run.step(x, y, precision, lambda loss: loss.backward())
        losses["mnistmem"].append(out["loss"])
        times["mnistmem"].append(time.perf_counter() - start)
    result = {
        "family": family,
        "batch_size": batch,
        "steps": steps,
        "precision": precision,
        "channels_last": channels_last,
    }
    for name in times:
        median = statistics.median(times[name][2:])
        result[f"{name}_train_images_per_s"] = batch / median
        result[f"{name}_loss_last10"] = float(np.mean(losses[name][-10:]))
    result["train_speedup"] = result["mnistmem_train_images_per_s"] / result["reference_train_images_per_s"]
    return result


def bench_sampling(family: str, n: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_model(family).to(device).eval()
    out = {}
    start = time.perf_counter()
    sample(model, n, seed=0, batch_size=64, progress=False)
    out["mnistmem_sample_images_per_s"] = n / (time.perf_counter() - start)
    start = time.perf_counter()
    with torch.no_grad():
        if family == "gan":
            for _ in range(0, n, 64):
                model.generator(torch.randn(64, model.nz, 1, 1))
        elif family == "vae":
            for _ in range(0, n, 64):
                torch.sigmoid(model.decoder(torch.randn(64, model.latent)))
        else:  # the same DPM-Solver++ 20-step loop, written plainly with one shared randn
            for _ in range(0, n, 64):
                scheduler = model.make_sampler("dpm")
                scheduler.set_timesteps(20)
                x = torch.randn(64, 1, 28, 28)
                for t in scheduler.timesteps:
                    x = scheduler.step(model.unet(x, t).sample, t, x).prev_sample
    out["reference_sample_images_per_s"] = n / (time.perf_counter() - start)
    if family == "diffusion":  # the example's DDPMPipeline: 1000 DDPM steps; time 10 of them
        scheduler = model.scheduler
        scheduler.set_timesteps(1000)
        x = torch.randn(64, 1, 28, 28)
        start = time.perf_counter()
        with torch.no_grad():
            for t in scheduler.timesteps[:10]:
                x = scheduler.step(model.unet(x, t).sample, t, x).prev_sample
        out["ddpm1000_sample_images_per_s"] = 64 / ((time.perf_counter() - start) * 100)
    return out


# ------------------------------------------------------------------------------------ precision choice
def _quality(model_dir, n: int) -> dict:
    from mnistmem.experiments import scales

    model = checkpoints.load_model(model_dir)
    sampler = scales.config("cpu", "main")["sampler"] if model.family == "diffusion" else {}
    images, _ = sample(model, n, seed=1, batch_size=128, progress=False, **sampler)
    test, _ = data.load_mnist("test")
    _, confidence = quality.classifier_confidence(images)
    return {"fid": quality.mnist_fid(images, test), "recognised": float((confidence >= 0.9).mean())}


def _images_per_s(run_dir) -> float:

    rates = [m["images_per_s"] for m in read_metrics(run_dir)][1:]  # the first window holds warm-up
    return statistics.median(rates) if rates else float("nan")


def bench_precision(family: str, steps: int, device: torch.device, quality_n: int) -> dict:
    """fp32 against bf16 (and both memory formats) for one family, with the trainer `mnistmem train` uses."""
    import tempfile

    settings = scales.config("cpu", "models")[family]
    auto = TrainConfig(model=family, **settings)
    out: dict = {
        "family": family,
        "steps": steps,
        "batch_size": auto.batch_size,
        "auto_precision": resolve_precision("auto", device),
        "auto_channels_last": resolve_channels_last(auto, device),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            for channels_last in (False, True):
                config = TrainConfig(
                    model=family,
                    **settings | {"steps": steps},
                    precision=precision,
                    channels_last=channels_last,
                    log_every=max(1, steps // 10),
                    checkpoint_every=steps,
                )
                run = f"{tmp}/{precision}-{channels_last}"
                train(config, run, progress=False)
                key = f"{precision}{'-channels_last' if channels_last else ''}"
                out[f"{key}_images_per_s"] = _images_per_s(run)
                if channels_last == out["auto_channels_last"]:
                    out[f"{precision}_quality"] = _quality(run, quality_n)
    layout = "-channels_last" if out["auto_channels_last"] else ""
    rates = {k.removesuffix("_images_per_s"): v for k, v in out.items() if k.endswith("_images_per_s")}
    out["fastest"] = max(rates, key=rates.get)
    out["auto"] = f"{out['auto_precision']}{layout}"
    out["auto_is_fastest"] = out["auto"] == out["fastest"]
    out["auto_over_fastest"] = rates[out["auto"]] / rates[out["fastest"]]  # 1.0 when auto is the fastest
    out["bf16_over_fp32"] = out[f"bf16{layout}_images_per_s"] / out[f"fp32{layout}_images_per_s"]
    return out


# ---------------------------------------------------------------------------------- quality at equal time
#: The plain reference recipes, on the project's architectures and all 60,000 digits: the PyTorch DCGAN
#: example (ngf = ndf = 64, Adam 2e-4 with beta1 0.5, batch 128, no averaging); diffusers' unconditional
#: training example (train_unconditional.py defaults: batch 16, lr 1e-4, 500 warm-up steps then a cosine over
#: its 100 epochs, EMA with warm-up up to 0.9999, clipping at 1, no loss weighting; the UNet widths are the
#: project recipe's, so only the optimisation differs); the PyTorch VAE example (Adam 1e-3, batch 128).
REFERENCE_RECIPES = {
    "gan": {"model_kwargs": {"ngf": 64, "ndf": 64}, "batch_size": 128, "lr": 2e-4, "ema": None},
    "diffusion": {
        "batch_size": 16,
        "lr": 1e-4,
        "lr_schedule": "cosine",
        "warmup_steps": 500,
        "steps": 375_000,  # 100 epochs of 60,000 at batch 16: the cosine barely decays within a bench budget
        "ema": 0.9999,
        "ema_warmup": True,
        "grad_clip": 1.0,
    },
    "vae": {"model_kwargs": {}, "batch_size": 128, "lr": 1e-3, "ema": None},
}


def project_recipe(family: str) -> TrainConfig:
    """The recipe the cpu scale trains `family` with: its `training` section if it has one, else `models`."""
    from mnistmem.experiments.stages import train_config

    section = "training" if family in scales.config("cpu", "training") else "models"
    return TrainConfig.from_dict(train_config("cpu", family, data={}, section=section))


def reference_recipe(family: str) -> TrainConfig:
    ours = project_recipe(family).to_dict()
    plain = {"model_kwargs": {k: v for k, v in ours["model_kwargs"].items() if k != "snr_gamma"}}
    recipe = {**ours, **plain, "lr_schedule": "constant", "warmup_steps": 0, "schedule_steps": None}
    recipe.update({"grad_clip": None, "ema_warmup": False, "keep_every": None, **REFERENCE_RECIPES[family]})
    return TrainConfig.from_dict(recipe)


def _train_for(config: TrainConfig, run: str, seconds: float) -> dict:
    """Train `config` into `run` for `seconds` more of wall time (it pauses at a checkpoint); its progress."""
    from mnistmem.training import TrainingPaused

    tick = time.monotonic()
    try:
        train(config, run, progress=False, deadline=tick + seconds)
    except TrainingPaused:
        pass
    step = checkpoints.list_checkpoints(run)[-1][0]
    # a recipe that reaches its last step early had less than the budget: the table marks it
    return {"step": step, "epochs": step * config.batch_size / 60_000, "finished_early": step >= config.steps}


def bench_equal_time(family: str, minutes: float, quality_n: int) -> dict:
    import tempfile

    ours, plain = project_recipe(family), reference_recipe(family)
    out: dict = {"family": family, "minutes": minutes, "quality_n": quality_n}
    with tempfile.TemporaryDirectory() as tmp:
        half = _train_for(ours, f"{tmp}/ours", 30 * minutes)
        out["ours_half"] = {**half, **_quality(f"{tmp}/ours", quality_n)}
        full = _train_for(ours, f"{tmp}/ours", 30 * minutes)
        out["ours"] = {**full, **_quality(f"{tmp}/ours", quality_n)}
        reference = _train_for(plain, f"{tmp}/reference", 60 * minutes)
        out["reference"] = {**reference, **_quality(f"{tmp}/reference", quality_n)}
    out["recipes"] = {"ours": ours.to_dict(), "reference": plain.to_dict()}
    out["fid_reference_over_ours"] = out["reference"]["fid"] / out["ours"]["fid"]
    out["ours_at_half_time_reaches_reference_fid"] = out["ours_half"]["fid"] <= out["reference"]["fid"]
    return out


def main_equal_time(args) -> None:
    from mnistmem.devices import cpu_summary

    cpu = cpu_summary()
    print(f"CPU: {cpu['model']} ({cpu['kind']}); flags: {' '.join(cpu['flags'] or ['unknown'])}")
    budget = f"{args.equal_time:g} min of training per recipe"
    print(f"threads: {torch.get_num_threads()}; {budget}; quality from {args.quality_n} samples\n")
    families = [f for f in args.families.split(",") if f != "classifier"]
    report = {"hardware": hardware_summary(pick_device())}
    report["results"] = _measure_each(families, lambda f: bench_equal_time(f, args.equal_time, args.quality_n))
    print(f"\n{'family':<10}{'recipe':<11}{'epochs':>7}{'FID':>7}{'recognised':>11}")
    for r in report["results"]:
        for name, key in (("ours, T/2", "ours_half"), ("ours, T", "ours"), ("reference", "reference")):
            q = r[key]
            early = "  (its recipe ended before the time was up)" if q["finished_early"] else ""
            print(f"{r['family']:<10}{name:<11}{q['epochs']:>7.1f}{q['fid']:>7.1f}{q['recognised']:>11.1%}{early}")
        verdict = "yes" if r["ours_at_half_time_reaches_reference_fid"] else "no"
        print(
            f"{'':<10}reference FID / ours = {r['fid_reference_over_ours']:.2f}; ours at T/2 reaches the reference's "
            f"FID at T: {verdict}"
        )
    print("(FID of a few thousand samples reads higher than of 10,000: compare the rows with each other)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


def _measure_each(families: list[str], measure) -> list[dict]:
    """`measure(family)` for each family, each result printed as a JSON line as soon as it is known."""
    results = []
    for family in families:
        results.append(measure(family))
        print(json.dumps(results[-1]), flush=True)
    return results


def main_precision(args, device: torch.device) -> None:
    from mnistmem.devices import cpu_summary

    cpu = cpu_summary()
    print(f"CPU: {cpu['model']} ({cpu['kind']}); flags: {' '.join(cpu['flags'] or ['unknown'])}")
    print(f"threads: {torch.get_num_threads()}; steps per run: {args.steps}; quality from {args.quality_n} samples\n")
    families = [f for f in args.families.split(",") if f != "classifier"]
    report = {"hardware": hardware_summary(device)}
    report["results"] = _measure_each(families, lambda f: bench_precision(f, args.steps, device, args.quality_n))
    print(
        f"\n{'family':<10}{'fp32':>8}{'bf16':>8}{'fp32 cl':>9}{'bf16 cl':>9}  {'FID fp32/bf16':>14}  "
        f"{'recog. fp32/bf16':>17}  auto -> fastest?"
    )
    for r in report["results"]:
        q32, q16 = r["fp32_quality"], r["bf16_quality"]
        print(
            f"{r['family']:<10}{r['fp32_images_per_s']:>8.0f}{r['bf16_images_per_s']:>8.0f}"
            f"{r['fp32-channels_last_images_per_s']:>9.0f}{r['bf16-channels_last_images_per_s']:>9.0f}  "
            f"{q32['fid']:>6.0f}/{q16['fid']:<7.0f}  {q32['recognised']:>8.1%}/{q16['recognised']:<8.1%}  "
            f"{r['auto']} -> {r['fastest']} ({r['auto_over_fastest']:.0%} of the fastest)"
        )
    print("(images/s of training; cl = channels_last memory format; FID and recognised share at equal steps;")
    print(" differences under ~10% are within the run-to-run noise of a shared 2-core machine)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", action="store_true", help="compare fp32 and bf16 training (see above)")
    parser.add_argument("--equal-time", type=float, metavar="MINUTES", help="quality at equal wall time (see above)")
    parser.add_argument("--quality-n", type=int, default=1000, help="samples per model for --precision quality")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--families", default="gan,vae,diffusion,classifier")
    parser.add_argument("--sample-n", type=int, default=128)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    device = pick_device()
    if args.equal_time:
        main_equal_time(args)
        return
    if args.precision:
        main_precision(args, device)
        return
    report = {"hardware": hardware_summary(device), "results": []}
    print(f"device: {report['hardware']['device']}")

    def measure(family: str) -> dict:
        result = bench_training(family, args.steps, device)
        if family != "classifier":
            result.update(bench_sampling(family, args.sample_n, device))
        return result

    report["results"] = _measure_each(args.families.split(","), measure)
    print(
        f"\n{'family':<11}{'ref img/s':>10}{'ours img/s':>11}{'speedup':>8}"
        f"{'ref loss':>10}{'our loss':>10}{'sample ours/ref':>17}"
    )
    for r in report["results"]:
        sampling = ""
        if "mnistmem_sample_images_per_s" in r:
            sampling = f"{r['mnistmem_sample_images_per_s']:.0f}/{r['reference_sample_images_per_s']:.0f}"
        print(
            f"{r['family']:<11}{r['reference_train_images_per_s']:>10.0f}{r['mnistmem_train_images_per_s']:>11.0f}"
            f"{r['train_speedup']:>8.2f}{r['reference_loss_last10']:>10.3f}{r['mnistmem_loss_last10']:>10.3f}{sampling:>17}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
