"""Dose: how many copies of a work must a training set hold before the model reproduces it?

Question: 21 stroke canaries (random pen strokes that resemble no digit and no other canary,
`canaries.UNLIKE_DIGIT_STROKES`) are planted among all 60,000 training digits, three at each of the counts 1,
3, 10, 30, 100, 300 and 1,000. For each count, what share of a model's samples reproduce a canary planted that
often, averaged over the canaries of that count, and how close does the closest sample come?
Expected: reproduction rises steeply with duplication (Carlini et al. 2023 extract duplicated images far more
often; SISS plants one image 606 times in 60,000; Verma et al. 2024 estimate an "imitation threshold" of 200
to 700 copies), and a work seen once is not reproduced.

Why strokes, three per count, and a second run: a glyph such as ¶ planted 1,000 times might be copied because of
its shape, not its count. With several canaries of one family per count, the curve is an average over shapes,
and the spread between them shows how much the shape matters. The second diffusion run (`diffusion_b`) uses
another seed and rotates which canary gets which count, so each stroke is seen at two counts and the reader
sees run-to-run variation. The GAN is trained on the first assignment.

A sample reproduces a canary under a definition when that definition flags it as a copy and its nearest
training image under that definition is the canary, judged against the run's own *distinct* training images
(each canary once, `stages.score_against_own_training_set`): with the copies counted separately, a sample
identical to a canary would have two neighbours at distance 0, and the ratio test would wrongly clear it.

Nothing large is committed: the samples regenerate from their seeds; each run keeps the closest samples to each
canary (images, seeds, distances) for the book's gallery.
"""

from __future__ import annotations

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.canaries import UNLIKE_DIGIT_STROKES
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import draw, sampler_options, train_config, trained_then
from mnistmem.results import MODEL_DIR
from mnistmem.stats import wilson_interval

CLOSEST_FILE = "closest.npz"
#: The first diffusion run keeps its model here (EMA weights in half precision) for the extraction experiment.
SAMPLER_DIR = "sampler"
#: Per canary, the samples closest to it that a run keeps with their images (the gallery).
CLOSEST_KEPT = 8
#: The runs: (name, family, training seed, rotation of the count assignment).
RUNS = (("diffusion", "diffusion", 0, 0), ("diffusion_b", "diffusion", 1, 3), ("gan", "gan", 0, 0))


def assignment(counts: list[int], per_count: int, rotation: int = 0) -> list[dict]:
    """Canary specs: stroke k of `UNLIKE_DIGIT_STROKES` planted `counts[(k // per_count + rotation) % len]`
    times, for the first `per_count * len(counts)` strokes (a rotation moves every stroke to another count)."""
    total = per_count * len(counts)
    if total > len(UNLIKE_DIGIT_STROKES):
        raise ValueError(f"{total} canaries asked for, {len(UNLIKE_DIGIT_STROKES)} stroke canaries exist")
    return [
        {"glyph": UNLIKE_DIGIT_STROKES[k], "count": int(counts[(k // per_count + rotation) % len(counts)])}
        for k in range(total)
    ]


def reproduction_stage(ctx: StageContext) -> dict:
    """Draw the run's samples and count, for every canary, the samples that reproduce it under each definition
    (see the module docstring); keep the closest samples to each canary."""
    from mnistmem import checkpoints, copies
    from mnistmem.experiments.stages import canary_reproductions

    specs = ctx.config["data"]["canaries"]
    model = checkpoints.load_model(ctx.input(ctx.config["from"]) / MODEL_DIR)
    images, seeds = draw(model, ctx.config, progress=ctx.progress)
    judged = canary_reproductions(images, seeds, ctx.config["data"])
    canaries, to_canary, table, built = judged.canaries, judged.to_canary, judged.table, judged.built
    closest = np.argsort(to_canary, axis=0, kind="stable")[:CLOSEST_KEPT].T  # [canary, kept]
    rows = []
    for k, spec in enumerate(specs):
        rows.append(
            {
                "glyph": spec["glyph"],
                "count": spec["count"],
                "training_share": spec["count"] / len(built),
                "reproduced": {name: int(hits.sum()) for name, hits in judged.hits[k].items()},
                "nearest_is_canary": int((table.nn_index[:, 0] == judged.rows[k]).sum()),
                "closest_distance": float(to_canary[closest[k, 0], k]),
            }
        )
    if ctx.config.get("keep_sampler"):  # the extraction experiment attacks this model
        checkpoints.export_sampler(ctx.input(ctx.config["from"]) / MODEL_DIR, ctx.dir / SAMPLER_DIR, "float16")
    write_atomic(
        ctx.dir / CLOSEST_FILE,
        lambda h: np.savez_compressed(
            h,
            canaries=canaries,
            images=images[closest],
            seeds=seeds[closest],
            distance=np.take_along_axis(to_canary.T, closest, axis=1),
        ),
    )
    return {
        "n": len(images),
        "training_rows": len(built),
        "headline": copies.HEADLINE,
        "thresholds": table.thresholds,
        "canaries": rows,
        "criteria": copies.summarize(table, judged.baseline),
        "judged_against": f"the model's own {table.meta['n_train_distinct']} distinct training images",
    }


#: Beside the definitions of a copy, the dose curve counts the samples whose nearest training image (pixel
#: distance, against the distinct training images) is the canary: samples that resemble it more than any of the
#: 60,000 digits, copies or not. It shows what the strict definitions leave out (a stroke drawn again, but not
#: closely enough to count as a copy).
NEAREST = "nearest_is_canary"


def _hits(row: dict, criterion: str) -> int:
    return row[NEAREST] if criterion == NEAREST else row["reproduced"][criterion]


def dose_stage(ctx: StageContext) -> dict:
    """The dose-response curve: for each family and count, the share of samples that reproduce a canary of that
    count, pooled over its canaries and runs (Wilson 95% interval on the pooled count), the per-canary shares
    (the spread), and the closest distance any sample came to a canary of that count; `NEAREST` is pooled the
    same way."""
    curves = {}
    for name, family, _, _ in RUNS:
        stage = f"reproduction_{name}"
        if stage not in ctx.summaries:
            continue
        curves.setdefault(family, []).append((name, ctx.summaries[stage]))
    out = {}
    for family, runs in curves.items():
        criteria = list(runs[0][1]["canaries"][0]["reproduced"])
        counts = sorted({row["count"] for _, summary in runs for row in summary["canaries"]})
        points = []
        for count in counts:
            members = [
                (name, summary["n"], row)
                for name, summary in runs
                for row in summary["canaries"]
                if row["count"] == count
            ]
            total = sum(n for _, n, _ in members)
            point = {"count": count, "canaries": len(members), "samples": total, "by_criterion": {}}
            for criterion in [*criteria, NEAREST]:
                hits = sum(_hits(row, criterion) for _, _, row in members)
                low, high = wilson_interval(hits, total)
                point["by_criterion"][criterion] = {
                    "reproduced": hits,
                    "share": hits / total,
                    "ci_low": low,
                    "ci_high": high,
                    "per_canary": [
                        {"run": run, "glyph": row["glyph"], "share": _hits(row, criterion) / n}
                        for run, n, row in members
                    ],
                }
            point["training_share"] = members[0][2]["training_share"]
            point["closest_distance"] = min(row["closest_distance"] for _, _, row in members)
            points.append(point)
        out[family] = {"runs": [name for name, _ in runs], "points": points}
    return {"families": out}


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "dose")
    stages = []
    for name, family, seed, rotation in RUNS:
        if family not in settings["families"]:
            continue
        data = {
            "n": settings["n"],
            "seed": 0,
            "canaries": assignment(settings["counts"], settings["per_count"], rotation),
        }
        train = train_config(scale, family, data=data, section="onset_recipes", steps=settings["steps"], seed=seed)
        config = {
            "n": settings["n_samples"],
            "seed": 1,
            "sampler": sampler_options(scale, family),
            "data": data,
            "keep_sampler": name == "diffusion",
        }
        stages += trained_then(name, train, f"reproduction_{name}", config, reproduction_stage)
    names = tuple(stage.name for stage in stages if stage.name.startswith("reproduction_"))
    stages.append(Stage("dose", {"runs": list(names)}, dose_stage, after=names))
    return stages


EXPERIMENT = Experiment(
    name="dose",
    question="How many copies of a work must the training set hold before the model reproduces it?",
    plan=plan,
)
