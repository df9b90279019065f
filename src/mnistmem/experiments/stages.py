"""Stage functions shared by the experiments: train a model, sample from it, score the samples.

Each takes a `StageContext` (folder, config, inputs) and returns a JSON summary for the manifest. Large
intermediate files (training checkpoints) go to the stage's `scratch/` folder, which is not committed; the
final weights are copied into `model/` so a reader can sample from the exact model the book describes.
"""

from __future__ import annotations

import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Stage, StageContext
from mnistmem.results import MODEL_DIR, OWN_TABLE_FILE, SAMPLES_FILE, TABLE_FILE, load_samples, save_samples

#: Samples are computed in fixed blocks of this many seeds; regenerating one needs the same block size.
SAMPLE_BATCH = 128


def train_stage(ctx: StageContext) -> dict:
    """Train (or resume training) the model described by `ctx.config["train"]`, a `TrainConfig` dict."""
    from mnistmem import checkpoints, training

    config = training.TrainConfig.from_dict(ctx.config["train"])
    tick = time.perf_counter()
    final = training.train(config, ctx.scratch / "run", resume=True, progress=ctx.progress, deadline=ctx.deadline)
    target = ctx.dir / MODEL_DIR
    if target.exists():
        shutil.rmtree(target)
    # What sampling needs, without the optimizer's state (twice the size of the weights).
    shutil.copytree(final, target, ignore=shutil.ignore_patterns(checkpoints.OPTIMIZER))
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


def sampler_stage(ctx: StageContext) -> dict:
    """The trained model as the book's samples are drawn from it, small enough to commit: the final checkpoint
    of the training stage `from` (of the experiment `experiment`, if given) as an exported sampler, its EMA
    weights with parameters stored in `dtype` (`checkpoints.export_sampler`); and a measurement of what the
    storage changed: `check_n` samples drawn from the full-precision checkpoint, regenerated from the stored
    sampler with the same seeds, compared pixel by pixel."""
    from mnistmem import checkpoints, sampling

    source = model_dir(ctx)
    record = checkpoints.export_sampler(source, ctx.dir / MODEL_DIR, ctx.config["dtype"])
    check = {"n": ctx.config["check_n"], "seed": ctx.config["seed"], "sampler": ctx.config["sampler"]}
    images, seeds = draw(checkpoints.load_model(source), check)
    stored = checkpoints.load_model(ctx.dir / MODEL_DIR)
    compared = sampling.compare_regenerated(
        stored, images, seeds, batch_size=sample_batch_size(check), **ctx.config["sampler"]
    )
    return {**record, "stored_vs_full_precision": compared, "parameters": stored.sampler_size()[0]}


def model_dir(ctx: StageContext):
    """The folder of the model a stage reads: the `model/` folder of its stage `from`, or, where the config names
    an upstream `experiment`, that experiment's stage `from` and its `folder` (default `model/`)."""
    upstream = ctx.config.get("experiment")
    if upstream:
        return ctx.upstream(upstream).path(ctx.config["from"], ctx.config.get("folder", MODEL_DIR))
    return ctx.input(ctx.config["from"]) / MODEL_DIR


def drawn_from(result, sample: str):
    """(experiment result, stage, folder) of the model the sample stage `sample` of `result` drew from: what
    `model_dir` resolved when the stage ran, read back from its record."""
    config = result.stage(sample)["config"]
    source = result.sibling(config["experiment"]) if config.get("experiment") else result
    return source, config["from"], config.get("folder", MODEL_DIR)


def sample_batch_size(sample_config: dict) -> int:
    """The block size a sample stage used (see `mnistmem.sampling` on why regeneration needs it)."""
    return int(sample_config.get("batch_size", SAMPLE_BATCH))


def draw(model, sample_config: dict, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples with base seed `seed`, in the block size and with the sampler settings of `sample_config`
    (a sample stage's config; `label` asks a class-conditional model for one class): the one way every stage
    draws, so that a stored seed regenerates its sample."""
    from mnistmem import sampling

    return sampling.sample(
        model,
        sample_config["n"],
        seed=sample_config["seed"],
        batch_size=sample_batch_size(sample_config),
        progress=progress,
        label=sample_config.get("label"),
        **sample_config.get("sampler", {}),
    )


def sample_stage(ctx: StageContext) -> dict:
    """Draw `n` samples with base seed `seed` from the model of the stage named `ctx.config["from"]`: its
    `model/` folder, or, where the config names an upstream `experiment`, that experiment's stage and `folder`."""
    from mnistmem import checkpoints

    model = checkpoints.load_model(model_dir(ctx))
    tick = time.perf_counter()
    images, seeds = draw(model, ctx.config, progress=ctx.progress)
    seconds = time.perf_counter() - tick
    save_samples(ctx.dir / SAMPLES_FILE, images, seeds)
    return {
        "n": len(images),
        "seed": ctx.config["seed"],
        "seconds": round(seconds, 1),
        "images_per_second": round(len(images) / max(seconds, 1e-9), 1),
    }


def judge_features(train_images: np.ndarray) -> dict:
    """The embedding criteria's inputs, as `copies.score_samples` keyword arguments: the pretrained MNIST
    classifier's features (criterion `feature_cosine`) and the copy descriptor's embedding (`copy_descriptor`),
    each with the training images' vectors.

    The vectors of the 60,000 training images take a minute or more on two CPU cores, so they are computed once
    per process and kept on disk under `<data dir>/cache/`, named by the SHA-256 of the network's weights and of
    the images: a retrained network or other images can never reuse stale vectors.
    """
    from mnistmem import data
    from mnistmem.models import classifier, descriptor

    judge = classifier.load_pretrained()
    copy_judge = descriptor.load_pretrained()
    key = (id(judge), id(copy_judge), data.fingerprint(train_images))
    if key not in _FEATURE_CACHE:
        if len(_FEATURE_CACHE) >= 4:  # all 60,000 digits and a few models' own training sets
            _FEATURE_CACHE.pop(next(iter(_FEATURE_CACHE)))
        _FEATURE_CACHE[key] = (
            _cached_on_disk(judge, judge.features, train_images),
            _cached_on_disk(copy_judge, copy_judge.embed, train_images),
        )
    train_features, descriptor_train = _FEATURE_CACHE[key]
    return {
        "features": judge.features,
        "train_features": train_features,
        "descriptor": copy_judge.embed,
        "descriptor_train": descriptor_train,
    }


def feature_cache_path(model, images: np.ndarray) -> Path:
    """`<data dir>/cache/features-<weights hash>-<images hash>.npy` (exact hashes, not fingerprints)."""
    import hashlib

    from mnistmem import diskcache
    from mnistmem.data import content_digest

    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    return diskcache.cache_file(f"features-{weights.hexdigest()[:16]}-{content_digest(images)[:16]}")


def _cached_on_disk(model, fn, images: np.ndarray) -> np.ndarray:
    """`fn(images)` (a network's vectors), from the disk cache when its bytes are verified (`mnistmem.diskcache`)."""
    from mnistmem import diskcache

    return diskcache.cached_array(feature_cache_path(model, images), lambda: np.asarray(fn(images), np.float32))


def copy_cells(n_cells: int, fit_on: int | None = None):
    """Meehan et al.'s k-means cells on the training images, fitted once per process and setting.

    `fit_on` fits the partition on that many training images (every 60000/fit_on-th) instead of all 60,000:
    the smoke scale does, to stay fast; the cells are then a coarser partition of the same space.
    """
    from mnistmem import ctest, data

    key = (n_cells, fit_on)
    if key not in _CELL_CACHE:
        train = data.load_mnist("train")[0]
        _CELL_CACHE[key] = ctest.fit_cells(train if fit_on is None else train[:: len(train) // fit_on], n_cells)
    return _CELL_CACHE[key]


_FEATURE_CACHE: dict = {}
_CELL_CACHE: dict = {}


def score_stage(ctx: StageContext) -> dict:
    """Search all 60,000 training images for each sample's neighbours; score every criterion against the
    calibration baseline; add classifier labels, confidence and MNIST-FID; list the copied training images."""
    from mnistmem import copies, data, quality, tables
    from mnistmem.dataspec import DataSpec
    from mnistmem.models import classifier

    images, seeds = load_samples(ctx.input(ctx.config["from"]) / SAMPLES_FILE)
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    table = copies.score_samples(
        images,
        seeds,
        train,
        test_images=test,
        **judge_features(train),
        cells=copy_cells(ctx.config["cells"], ctx.config.get("cells_fit")),
        name=ctx.config["from"],
        progress=ctx.progress,
    )
    model = classifier.load_pretrained()
    labels, confidence = quality.classifier_confidence(images, model)
    table.extra["label"], table.extra["confidence"] = labels.astype(np.int64), confidence.astype(np.float64)
    tables.save_table(table.first_neighbours(tables.STORED_NEIGHBOURS), ctx.dir / TABLE_FILE)
    baseline = ctx.upstream("calibration").table("baseline")
    flagged = table.flags[copies.HEADLINE]
    copied, times = np.unique(copies.nearest_under(table, copies.HEADLINE)[flagged], return_counts=True)
    order = np.argsort(-times, kind="stable")
    own = None
    if ctx.config.get("data") and DataSpec.from_dict(ctx.config["data"]) != DataSpec():
        own_table, own_baseline = score_against_own_training_set(images, seeds, ctx.config["data"], test)
        tables.save_table(own_table.first_neighbours(tables.STORED_NEIGHBOURS), ctx.dir / OWN_TABLE_FILE)
        own = {
            "n_train": own_table.meta["n_train"],
            "n_train_distinct": own_table.meta["n_train_distinct"],
            "criteria": copies.summarize(own_table, own_baseline),
            "c_t": own_table.meta.get("c_t", {}).get("c_t"),
        }
    return {
        "n": len(table),
        "criteria": copies.summarize(table, baseline),
        "against_own_training_set": own,
        "c_t": table.meta.get("c_t", {}).get("c_t"),
        "fid": quality.mnist_fid(images, test, model),
        "mean_confidence": float(confidence.mean()),
        "confident_share": quality.recognised_share(confidence),
        "copied_training_images": {
            "criterion": copies.HEADLINE,
            "index": copied[order].tolist(),
            "times": times[order].tolist(),
        },
        "own_training_share": own_training_share(table, ctx.config.get("data")),
    }


def score_against_own_training_set(images: np.ndarray, seeds: np.ndarray, data_spec: dict, test: np.ndarray):
    """(table, baseline) of a model trained on a subset (or with canaries), judged against its *own* distinct
    training images rather than all 60,000: a digit the model never saw can then not veto a copy of one it did
    (the ratio test's second neighbour and Carlini's 50 neighbours come from the model's own data), and C_T's
    held-out set is the test digits. The baseline scores the test digits against the same set (computed once
    per process and training set: every sample set of one model shares it)."""
    import json

    from mnistmem import copies, data

    spec = json.dumps(data_spec, sort_keys=True)
    own, judges, cells = _own_reference(spec)
    table = copies.score_samples(images, seeds, own, test_images=test, cells=cells, progress=False, **judges)
    key = (spec, data.fingerprint(test))
    if key not in _OWN_BASELINES:
        _OWN_BASELINES.clear()
        _OWN_BASELINES[key] = copies.score_samples(
            test, None, own, progress=False, name="baseline: test digits vs own set", **judges
        )
    return table, _OWN_BASELINES[key]


_OWN_BASELINES: dict = {}


class CanaryJudging(NamedTuple):
    """A model's samples judged against the canaries planted in its training set (`canary_reproductions`)."""

    canaries: np.ndarray  # uint8 [K, 28, 28], in the data spec's order
    to_canary: np.ndarray  # pixel distance from every sample to every canary [N, K]
    table: object  # the samples judged against the model's own distinct training set (`copies.SampleTable`)
    baseline: object  # the test digits judged against the same set
    built: object  # the built training set (`dataspec.TrainingData`)
    rows: list[int]  # the row of each canary's first copy: the one the distinct-image search reports
    hits: list[dict[str, np.ndarray]]  # per canary, per criterion: the samples that reproduce it


def canary_reproductions(images: np.ndarray, seeds: np.ndarray, data_spec: dict) -> CanaryJudging:
    """How a model's samples relate to the canaries planted in its training set (`data_spec`'s canaries): a
    sample reproduces canary k under a criterion when the criterion flags it and the nearest training image the
    criterion sees is the canary, judged against the model's own *distinct* training set (each canary once,
    `score_against_own_training_set`). Rows of the built set come from MNIST (source >= 0) or canary k (source
    -(k + 1))."""
    from mnistmem import copies, data
    from mnistmem.canaries import render_canaries
    from mnistmem.dataspec import DataSpec
    from mnistmem.neighbors import knn

    canaries = render_canaries([c["glyph"] for c in data_spec["canaries"]])
    distance, index = knn(images, canaries, k=len(canaries), progress=False)
    to_canary = np.empty((len(images), len(canaries)))
    to_canary[np.arange(len(images))[:, None], index] = distance
    test, _ = data.load_mnist("test")
    table, baseline = score_against_own_training_set(images, seeds, data_spec, test)
    built = DataSpec.from_dict(data_spec).build()
    nearest = {name: copies.nearest_under(table, name) for name in table.scores}
    rows = [int(np.flatnonzero(built.sources == -(k + 1))[0]) for k in range(len(canaries))]
    hits = [{name: flags & (nearest[name] == row) for name, flags in table.flags.items()} for row in rows]
    return CanaryJudging(canaries, to_canary, table, baseline, built, rows, hits)


@lru_cache(maxsize=2)
def _own_reference(data_spec_json: str):
    """A data spec's training images, the judges' vectors of them, and Meehan et al.'s cells on its distinct
    images (about 20 per cell, at most 50 cells)."""
    import json

    from mnistmem import copies, ctest
    from mnistmem.dataspec import DataSpec

    own = DataSpec.from_dict(json.loads(data_spec_json)).build().images
    distinct = own[copies.distinct_images(own)[0]]
    cells = ctest.fit_cells(distinct, min(50, max(2, len(distinct) // 20)))
    return own, judge_features(own), cells


def own_training_share(table, data_spec: dict | None) -> float | None:
    """Share of samples whose nearest of all 60,000 training images is one the model was trained on.

    For a model trained on a subset of n digits, chance is n / 60,000: the other digits are a control.
    None when the model saw all 60,000 (the share is then 1 by construction).
    """
    from mnistmem.dataspec import DataSpec

    spec = DataSpec.from_dict(data_spec or {})
    if spec.n is None:
        return None
    return float(np.isin(table.nn_index[:, 0], spec.indices()).mean())


#: optimisation settings a family's entry in `scales` may set (see `training.TrainConfig`); left out of the
#: stage config when not set, so stages trained before a setting existed keep their configuration hash
RECIPE_FIELDS = ("lr", "ema", "ema_warmup", "lr_schedule", "warmup_steps", "grad_clip", "precision")


def train_config(scale: str, family: str, data: dict, section: str = "models", **overrides) -> dict:
    """A `TrainConfig` as a dict: the family's settings at `scale` (in the `scales` section `section`), on
    training data `data` (a DataSpec dict)."""
    settings = dict(scales.config(scale, section)[family])
    settings.update(overrides)
    recipe = {name: settings[name] for name in RECIPE_FIELDS if name in settings}
    return {
        **recipe,
        "model": family,
        "model_kwargs": settings["model_kwargs"],
        "data": data,
        "steps": settings["steps"],
        "batch_size": settings["batch_size"],
        "seed": settings.get("seed", 0),
        "checkpoint_every": settings.get("checkpoint_every", max(1, min(500, settings["steps"]))),
        "keep_every": settings.get("keep_every"),
    }


def checkpoint_curve_stage(ctx: StageContext) -> dict:
    """Copying against training step: sample from every kept checkpoint of a training run and score it."""
    from mnistmem import checkpoints, copies, data, sampling
    from mnistmem.dataspec import DataSpec

    run = ctx.input(ctx.config["from"]) / "scratch" / "run"
    kept = checkpoints.list_checkpoints(run)
    if not kept:
        raise RuntimeError(f"no kept checkpoints under {run}; train with keep_every set")
    train, _ = data.load_mnist("train")
    own = DataSpec.from_dict(ctx.config["data"]).indices()
    rows = []
    for step, path in kept:
        model = checkpoints.load_model(path)
        images, seeds = sampling.sample(
            model, ctx.config["n"], seed=ctx.config["seed"], progress=False, **ctx.config.get("sampler", {})
        )
        table = copies.score_samples(images, seeds, train, progress=False)
        rows.append(
            {
                "step": int(step),
                "nn_ratio_rate": float(table.flags["nn_ratio"].mean()),
                "own_training_share": float(np.isin(table.nn_index[:, 0], own).mean()),
                "median_nn_distance": float(np.median(table.nn_distance[:, 0])),
            }
        )
    return {"curve": rows, "chance": len(own) / len(train)}


def sampler_options(scale: str, family: str, trained: bool = False) -> dict:
    """The sampler settings at `scale` (only the diffusion model has any: solver steps): those of the models the
    experiments train, or (`trained`) those of the `training` experiment's model, which `main` and the census
    sample and which needs more solver steps (measured: `training`'s solver_diffusion stage)."""
    if family != "diffusion":
        return {}
    return dict(scales.config(scale, "main")["trained_sampler" if trained else "sampler"])


def trained_then(tag: str, train: dict, stage: str, config: dict, function) -> list[Stage]:
    """Train a model (stage `train_<tag>`) and run `function` on it at once (stage `stage`, whose config gets
    `from`): the pair an experiment uses when the model itself is not kept (its `model/` folder is not
    committed), so the stage that reads it runs in the same sitting."""
    return [
        Stage(f"train_{tag}", {"train": train}, train_stage),
        Stage(stage, {"from": f"train_{tag}", **config}, function, after=(f"train_{tag}",)),
    ]


def model_stages(scale: str, tag: str, train: dict, n_samples: int, data: dict) -> list[Stage]:
    """Train one model, draw `n_samples` from it and score them: the three stages every copy experiment repeats.

    `train` is a `train_config(...)` dict; `data` its data spec (for the own-training-set share).
    """
    return [
        Stage(f"train_{tag}", {"train": train}, train_stage),
        *sampled_stages(scale, tag, f"train_{tag}", train["model"], n_samples, data),
    ]


def sampled_stages(
    scale: str, tag: str, model_stage: str, family: str, n_samples: int, data: dict, trained: bool = False
) -> list[Stage]:
    """Draw `n_samples` from the model in `model_stage`'s `model/` folder and score them (`trained`: the
    `training` experiment's model, with its sampler settings)."""
    main = scales.config(scale, "main")
    return [
        Stage(
            f"sample_{tag}",
            {"from": model_stage, "n": n_samples, "seed": 1, "sampler": sampler_options(scale, family, trained)},
            sample_stage,
            after=(model_stage,),
        ),
        Stage(
            f"score_{tag}",
            {"from": f"sample_{tag}", "cells": main["cells"], "cells_fit": main.get("cells_fit"), "data": data},
            score_stage,
            after=(f"sample_{tag}",),
        ),
    ]
