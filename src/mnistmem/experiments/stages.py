"""Stage functions shared by the experiments: train a model, sample from it, score the samples.

Each takes a `StageContext` (folder, config, inputs) and returns a JSON summary for the manifest. Large
intermediate files (training checkpoints) go to the stage's `scratch/` folder, which is not committed; the
final weights are copied into `model/` so a reader can sample from the exact model the book describes.
"""

from __future__ import annotations

import shutil
import time

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments.runner import StageContext

SAMPLES_FILE = "samples.npz"
TABLE_FILE = "table.npz"
MODEL_DIR = "model"


def train_stage(ctx: StageContext) -> dict:
    """Train (or resume training) the model described by `ctx.config["train"]`, a `TrainConfig` dict."""
    from mnistmem import checkpoints, training

    config = training.TrainConfig.from_dict(ctx.config["train"])
    tick = time.perf_counter()
    final = training.train(config, ctx.scratch / "run", resume=True, progress=ctx.progress)
    target = ctx.dir / MODEL_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(final, target)
    kept = [step for step, _ in checkpoints.list_checkpoints(ctx.scratch / "run")]
    metrics = training.read_metrics(ctx.scratch / "run")
    return {
        "model": config.model,
        "steps": config.steps,
        "training_images": len(config.data.build().images),
        "kept_checkpoints": kept,
        "final_loss": metrics[-1] if metrics else None,
        "train_seconds_this_run": round(time.perf_counter() - tick, 1),
    }


def save_samples(path, images: np.ndarray, seeds: np.ndarray, **extra: np.ndarray) -> None:
    """Samples as compressed uint8 with their per-sample seeds (atomic)."""
    write_atomic(path, lambda handle: np.savez_compressed(handle, images=images, seeds=seeds, **extra))


def load_samples(path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return archive["images"], archive["seeds"]


def sample_stage(ctx: StageContext) -> dict:
    """Draw `n` samples with base seed `seed` from the model trained by the stage named `ctx.config["from"]`."""
    from mnistmem import checkpoints, sampling

    model = checkpoints.load_model(ctx.input(ctx.config["from"]) / MODEL_DIR)
    tick = time.perf_counter()
    images, seeds = sampling.sample(
        model,
        ctx.config["n"],
        seed=ctx.config["seed"],
        batch_size=ctx.config.get("batch_size", 256),
        progress=ctx.progress,
        **ctx.config.get("sampler", {}),
    )
    seconds = time.perf_counter() - tick
    save_samples(ctx.dir / SAMPLES_FILE, images, seeds)
    return {
        "n": len(images),
        "seed": ctx.config["seed"],
        "seconds": round(seconds, 1),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 1),
    }
