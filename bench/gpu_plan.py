"""Benchmark: can the `gpu` plan run in 7-minute loans? The first minute of a GPU trip (not a test).

    PYTHONPATH=src python bench/gpu_plan.py [--out DIR] [--steps 20] [--queries 20000] [--samples 2048]

On the device at hand (CUDA if present, else the CPU, for a rehearsal) and at the sizes the `gpu` plan names
in `mnistmem.experiments.scales`:

* training images/s of each family's `training` recipe (the project trainer's step, its precision and memory
  format choices: bf16 autocast where it helps), the minutes its full training would take, and the bytes of its
  paused state (weights, their moving average, the optimiser's moments). A trip brings a paused state back only
  within 64 MiB and carries about 12 MiB of it out again (`mnistmem.trip`), so a training whose minutes exceed
  one step must be made shorter before the plan can finish;
* sampling images/s of each family's sampler at the plan's `main` settings, and the minutes of the census;
* exact search (`mnistmem.neighbors.knn`, k = 10) of generated-size queries against all 60,000 training digits,
  pairs/s against a plain `torch.cdist` + `topk` baseline in float32 on the same device in the same run, and
  the projected minutes for 1,000,000 x 60,000.

Prints a table and writes `<out>/throughput-<device kind>.json` (the device, torch and CUDA versions, every
figure), which `mnistmem trip pack` brings back when `--out` lies under `data/results/gpu/`. Counts here are
small on purpose: the loan's whole budget is 15 minutes. On a CPU the numbers only prove the script runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mnistmem import data
from mnistmem.devices import hardware_summary, pick_device
from mnistmem.experiments import scales
from mnistmem.experiments.stages import train_config
from mnistmem.models.base import to_model_input
from mnistmem.neighbors import knn
from mnistmem.sampling import sample
from mnistmem.training import TrainConfig, TrainingRun, resolve_channels_last, resolve_precision, step_seed

#: one loan's compute budget for the plan, in minutes (`mnistmem.trip.step_command`)
STEP_MINUTES = 6.0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def state_bytes(run: TrainingRun) -> int:
    """Bytes a paused training keeps: weights, the EMA's shadow weights and every optimiser state tensor."""
    total = sum(t.numel() * t.element_size() for t in run.model.state_dict().values())
    if run.ema is not None:
        total += sum(p.numel() * p.element_size() for p in run.ema.shadow_params)
    for optimizer in run.optimizers.values():
        for state in optimizer.state.values():
            total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total


def bench_training(family: str, steps: int, device: torch.device, images: np.ndarray, labels: np.ndarray) -> dict:
    config = TrainConfig.from_dict(train_config("gpu", family, data={}, section="training"))
    precision = resolve_precision(config.precision, device)
    channels_last = resolve_channels_last(config, device)
    run = TrainingRun(config, device, channels_last)
    run.model.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    uint8_images, label_tensor = torch.from_numpy(images), torch.from_numpy(labels)
    rng = np.random.default_rng(0)
    times = []
    for step in range(steps + 3):  # 3 warm-up steps (kernel selection, allocator)
        rows = torch.from_numpy(rng.integers(0, len(labels), config.batch_size))
        x = to_model_input(uint8_images[rows], device).contiguous(memory_format=fmt)
        y = label_tensor[rows].to(device)
        synchronize(device)
        start = time.perf_counter()
        torch.manual_seed(step_seed(0, step))
        run.step(x, y, precision, lambda loss: loss.backward())
        synchronize(device)
        times.append(time.perf_counter() - start)
    per_s = config.batch_size / statistics.median(times[3:])
    minutes = config.steps * config.batch_size / per_s / 60
    return {
        "family": family,
        "model_kwargs": config.model_kwargs,
        "batch_size": config.batch_size,
        "steps_planned": config.steps,
        "precision": precision,
        "channels_last": channels_last,
        "train_images_per_s": per_s,
        "train_minutes_planned": minutes,
        "fits_one_step": minutes <= STEP_MINUTES,
        "paused_state_mib": state_bytes(run) / 2**20,
        "model": run.model,
    }


def bench_sampling(model, family: str, n: int, device: torch.device) -> dict:
    options = scales.config("gpu", "main")["trained_sampler"] if family == "diffusion" else {}
    model.eval()
    sample(model, min(n, 64), seed=1, batch_size=min(n, 64), device=device, progress=False, **options)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    sample(model, n, seed=0, batch_size=min(n, 1024), device=device, progress=False, **options)
    synchronize(device)
    per_s = n / (time.perf_counter() - start)
    census = scales.config("gpu", "census")["n"][family]
    return {
        "sample_images_per_s": per_s,
        "sampler": options,
        "census_samples": census,
        "census_minutes": census / per_s / 60,
    }


def cdist_topk(queries: torch.Tensor, reference: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """The plain baseline: float32 `torch.cdist` per chunk of queries, then `topk`."""
    out = []
    for start in range(0, len(queries), chunk):
        out.append(torch.cdist(queries[start : start + chunk], reference).topk(k, largest=False).indices)
    return torch.cat(out)


def bench_search(n_queries: int, device: torch.device, train: np.ndarray) -> dict:
    rng = np.random.default_rng(0)
    queries = train[rng.integers(0, len(train), n_queries)]
    knn(queries[:256], train, 10, device=device, progress=False)  # warm-up, prepares the reference
    synchronize(device)
    start = time.perf_counter()
    knn(queries, train, 10, device=device, progress=False)
    synchronize(device)
    exact = time.perf_counter() - start
    q = torch.from_numpy(queries.reshape(len(queries), -1)).to(device, torch.float32) / 255
    r = torch.from_numpy(train.reshape(len(train), -1)).to(device, torch.float32) / 255
    cdist_topk(q[:256], r, 10)
    synchronize(device)
    start = time.perf_counter()
    cdist_topk(q, r, 10)
    synchronize(device)
    baseline = time.perf_counter() - start
    pairs = n_queries * len(train)
    return {
        "queries": n_queries,
        "exact_pairs_per_s": pairs / exact,
        "cdist_topk_pairs_per_s": pairs / baseline,
        "exact_over_baseline": baseline / exact,
        "million_by_60000_minutes": 1_000_000 * len(train) / (pairs / exact) / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for throughput-<device>.json (default: print only)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per family")
    parser.add_argument("--queries", type=int, default=20_000, help="queries for the exact search")
    parser.add_argument("--samples", type=int, default=2048, help="samples per family for the sampling rate")
    parser.add_argument("--families", default="diffusion,gan,vae")
    args = parser.parse_args()
    device = pick_device()
    hardware = hardware_summary(device)
    images, labels = data.load_mnist("train")
    images, labels = np.array(images), np.array(labels)  # writable copies for torch.from_numpy
    print(f"device: {hardware['device']}; torch {torch.__version__}; CUDA {torch.version.cuda}", flush=True)
    record = {"hardware": hardware, "torch": torch.__version__, "cuda": torch.version.cuda, "families": []}
    path = None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        kind = torch.cuda.get_device_name(device) if device.type == "cuda" else hardware["cpu"]["kind"]
        path = args.out / f"throughput-{''.join(c if c.isalnum() else '-' for c in str(kind)).lower()}.json"

    def save() -> None:  # after every measurement: a loan's timeout must not take the finished ones with it
        if path is not None:
            path.write_text(json.dumps(record, indent=1, default=str))

    for family in args.families.split(","):
        row = bench_training(family, args.steps, device, images, labels)
        row.update(bench_sampling(row.pop("model"), family, args.samples, device))
        record["families"].append(row)
        save()
        print(
            f"{family:9s} train {row['train_images_per_s']:9.0f} img/s ({row['precision']}), "
            f"{row['steps_planned']:,} steps x {row['batch_size']} = {row['train_minutes_planned']:6.1f} min "
            f"({'fits' if row['fits_one_step'] else 'does NOT fit'} one {STEP_MINUTES:g}-minute step); paused state "
            f"{row['paused_state_mib']:.1f} MiB; sample {row['sample_images_per_s']:8.0f} img/s, census of "
            f"{row['census_samples']:,} = {row['census_minutes']:.1f} min",
            flush=True,
        )
    search = record["search"] = bench_search(args.queries, device, images)
    save()
    print(
        f"exact search {search['exact_pairs_per_s'] / 1e9:.2f} Gpairs/s, cdist+topk "
        f"{search['cdist_topk_pairs_per_s'] / 1e9:.2f} Gpairs/s "
        f"(exact/baseline speed {search['exact_over_baseline']:.2f}); "
        f"1,000,000 x 60,000 = {search['million_by_60000_minutes']:.1f} min",
        flush=True,
    )
    if path is not None:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
