"""Census: a million samples per model, each searched exactly against all 60,000 training digits.

Question: among 1,000,000 samples of the GAN and of the VAE, and 50,000 of the diffusion model (its
sampler is ~100 times slower), how many are copies of a training image under each definition? Ten thousand
samples can only bound a copy rate below about 0.04%; a million, below about 0.0004% (Carlini et al. 2023
drew about 2^20 per model). Also: which training images are nearest to many samples (a census of the
training set), and how copying splits by digit (Merger & Goldt 2026 find sparse regions memorised first).
Expected (the book's thesis): if a model stores copies at all, a census this large finds some; if it finds
none, the bound it sets is a strong statement the other way.

Each model's samples are drawn and scored in chunks (`chunk` samples, the same bytes as one call drawing
them all: `sampling.sample(first=...)`), each chunk kept in the stage's scratch folder, so a census stopped
by its time budget (`mnistmem reproduce --minutes`) or a kill resumes at the next chunk. What is committed
is small: the summary (counts, intervals, the census of nearest training images, the per-digit split), and
every sample that any definition flags (its image, seed and scores). The compact per-sample table of all
samples (nearest training image, the two nearest distances over distinct training images, the headline
score, one bit per definition) stays in scratch with its SHA-256 in the summary; any sample regenerates
from its seed (`sampling.regenerate`, block size `batch_size`).
"""

from __future__ import annotations

import time

import numpy as np

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import sampler_options
from mnistmem.training import TrainingPaused

FAMILIES = ("gan", "vae", "diffusion")
FLAGGED_FILE = "flagged.npz"
CENSUS_FILE = "census.npz"
#: At most this many flagged samples are stored with their images (the summary counts them all).
MAX_FLAGGED = 5000
BATCH = 128


class CensusPaused(TrainingPaused):
    """A census stopped at its time budget after a finished chunk; rerunning continues with the next one."""

    def __init__(self, folder, done: int, total: int) -> None:
        RuntimeError.__init__(self, f"census in {folder} paused after {done:,} of {total:,} samples (time budget)")
        self.out_dir, self.step, self.steps = folder, done, total


def _chunk(model, ctx: StageContext, first: int, size: int, judges: dict, train: np.ndarray) -> dict:
    """Draw samples first..first+size-1 and score them: the compact columns, and the flagged samples whole."""
    from mnistmem import copies, sampling

    images, seeds = sampling.sample(
        model, size, seed=ctx.config["seed"], batch_size=BATCH, progress=False, first=first, **ctx.config["sampler"]
    )
    table = copies.score_samples(images, seeds, train, progress=False, **judges)
    names = list(table.flags)
    flags = np.zeros(len(images), dtype=np.uint8)
    for bit, name in enumerate(names):
        flags |= table.flags[name].astype(np.uint8) << bit
    flagged = flags > 0
    return {
        "criteria": np.array(names),
        "thresholds": np.array([table.thresholds[n] for n in names]),
        "scores": np.stack([table.scores[n] for n in names], axis=1).astype(np.float64),
        "flags": flags,
        "nearest": table.nn_index[:, 0].astype(np.uint16),
        "second": table.nn_index[:, 1].astype(np.uint16),
        "headline_partner": copies.nearest_under(table, copies.HEADLINE).astype(np.uint16),
        "d1": table.nn_distance[:, 0].astype(np.float32),
        "d2": table.nn_distance[:, 1].astype(np.float32),
        "flagged_rows": np.flatnonzero(flagged).astype(np.int64) + first,
        "flagged_images": images[flagged],
    }


def _save_chunk(path, columns: dict) -> None:
    from mnistmem.atomic import write_atomic

    write_atomic(path, lambda handle: np.savez(handle, **columns))


def _load_chunk(path) -> dict | None:
    """A finished chunk, or None when it is missing or unreadable (then it is drawn again)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError):
        return None


def census_stage(ctx: StageContext) -> dict:
    """The census of one model's samples (see the module docstring)."""
    from mnistmem import checkpoints, copies, data, stats
    from mnistmem.experiments.stages import judge_features
    from mnistmem.integrity import sha256_file
    from mnistmem.results import MODEL_DIR, ResultError, save_samples
    from mnistmem.tables import SampleTable

    config = ctx.config
    upstream = ctx.upstream(config["experiment"])
    model_dir = upstream.dir / upstream.stage(config["from"])["folder"] / MODEL_DIR
    if not model_dir.is_dir():
        raise ResultError(
            f"the census needs the weights of {config['experiment']}/{config['from']} ({model_dir} is missing); "
            f"they are committed only for some models. Fix: mnistmem reproduce --scale {ctx.scale} "
            f"--only {config['experiment']} --rerun {config['from']}"
        )
    model = checkpoints.load_model(upstream.path(config["from"], MODEL_DIR))  # verified against its record
    train, train_labels = data.load_mnist("train")
    judges = judge_features(train)
    n, size = config["n"], config["chunk"]
    folder = ctx.scratch / "chunks"
    folder.mkdir(exist_ok=True)
    parts = []
    for first in range(0, n, size):
        path = folder / f"{first:010d}.npz"
        part = _load_chunk(path)
        if part is None:
            part = _chunk(model, ctx, first, min(size, n - first), judges, train)
            _save_chunk(path, part)
            if ctx.deadline is not None and time.monotonic() >= ctx.deadline and first + size < n:
                raise CensusPaused(ctx.dir, first + size, n)  # at least one chunk per sitting
        parts.append(part)
    names = [str(c) for c in parts[0]["criteria"]]
    scores = np.concatenate([p["scores"] for p in parts])
    flags = np.concatenate([p["flags"] for p in parts])
    nearest = np.concatenate([p["nearest"] for p in parts]).astype(np.int64)
    second = np.concatenate([p["second"] for p in parts]).astype(np.int64)
    partner = np.concatenate([p["headline_partner"] for p in parts]).astype(np.int64)
    d1, d2 = np.concatenate([p["d1"] for p in parts]), np.concatenate([p["d2"] for p in parts])
    seeds = (np.int64(config["seed"]) << np.int64(32)) + np.arange(n, dtype=np.int64)
    table = SampleTable(
        sample_id=np.arange(n),
        seed=seeds,
        nn_index=np.stack([nearest, second], axis=1),
        nn_distance=np.stack([d1, d2], axis=1).astype(np.float64),
        scores={name: scores[:, k] for k, name in enumerate(names)},
        flags={name: (flags >> k & 1).astype(bool) for k, name in enumerate(names)},
        thresholds={name: float(t) for name, t in zip(names, parts[0]["thresholds"], strict=True)},
    )
    criteria = copies.summarize(table, upstream.sibling("calibration").table("baseline"))
    for row in criteria:  # the most the rate can be, at 95%, given what was counted (a zero's bound)
        row["rate_upper_95"] = stats.wilson_interval(row["count"], n)[1]

    from mnistmem.atomic import write_atomic

    census_path = ctx.scratch / CENSUS_FILE
    write_atomic(
        census_path,
        lambda h: np.savez_compressed(
            h,
            nearest=nearest.astype(np.uint16),
            headline_partner=partner.astype(np.uint16),
            d1=d1,
            d2=d2,
            headline_score=table.scores[copies.HEADLINE].astype(np.float32),
            flags=flags,
            criteria=np.array(names),
        ),
    )
    rows = np.concatenate([p["flagged_rows"] for p in parts])
    images = np.concatenate([p["flagged_images"] for p in parts])
    keep = slice(0, MAX_FLAGGED)
    save_samples(
        ctx.dir / FLAGGED_FILE,
        images[keep],
        seeds[rows[keep]],
        sample=rows[keep],
        flags=flags[rows[keep]],
        scores=scores[rows[keep]],
        criteria=np.array(names),
        nearest=nearest[rows[keep]],
        headline_partner=partner[rows[keep]],
    )
    headline = table.flags[copies.HEADLINE]
    counts = np.bincount(nearest, minlength=len(train))
    top = np.argsort(-counts, kind="stable")[:20]
    return {
        "n": n,
        "seed": config["seed"],
        "sampler": config["sampler"],
        "batch_size": BATCH,
        "criteria": criteria,
        "flagged_by_any": int((flags > 0).sum()),
        "flagged_stored": int(min(len(rows), MAX_FLAGGED)),
        "census": {
            "expected_per_image": n / len(train),
            "training_images_nearest_to_some_sample": int((counts > 0).sum()),
            "most_often_nearest": [{"index": int(i), "samples": int(counts[i])} for i in top],
        },
        "per_digit": [
            {
                "digit": d,
                "samples": int((train_labels[nearest] == d).sum()),
                "headline_copies": int((headline & (train_labels[partner] == d)).sum()),
            }
            for d in range(10)
        ],
        "census_sha256": sha256_file(census_path),
    }


def plan(scale: str) -> list[Stage]:
    s = scales.config(scale, "census")
    return [
        Stage(
            f"census_{family}",
            {
                "experiment": "main",
                "from": f"model_{family}",
                "n": s["n"][family],
                "chunk": s["chunk"][family],
                "seed": 3,
                "sampler": sampler_options(scale, family, trained=True),
            },
            census_stage,
        )
        for family in FAMILIES
        if family in s["n"]
    ]


EXPERIMENT = Experiment(
    name="census",
    question="Among a million samples per model, how many are copies of a training image, and of which?",
    plan=plan,
    requires=("calibration", "main"),
)
