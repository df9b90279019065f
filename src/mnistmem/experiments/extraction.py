"""Extraction: can someone who does not already have a work get it out of the model?

Question, for each regime (a model trained on all 60,000 digits; diffusion models trained on 100 digits, which
copies, and on 3,200 digits, which the onset grid found copying none; a diffusion model trained with planted
stroke canaries):

1. *Completion* - shown part of a digit (its top half, left half or central crop), does the model complete it
   to the original? Prompts are the model's own training digits and, as the control, test digits of the same
   classes that it never saw (and, where planted, the canaries). A completion *retrieves* its original when the
   hidden part lies within the pixel-distance copy threshold of the original's hidden part: a bar that a test
   prompt can cross only by chance, so the test prompts' rate is the false-alarm level.
2. *Membership* - does the model's own per-example loss tell its training digits from test digits (ROC AUC
   with a bootstrap interval, true-positive rate at 1% false positives)? The EDPB's "probabilistically".
3. *A label as the prompt* - a class-conditional diffusion model trained on the digits of the onset grid's
   100- and 3,200-digit runs, asked for each digit: how often it copies, against the same model asked for
   nothing.
4. *Blind extraction* - Carlini et al. (2023)'s generate-and-filter attack: draw many samples, group the
   near-identical ones (`storage.clusters`), rank the groups by size, and call each group's medoid a candidate
   training image. Precision: the share of candidates that are copies of a training image of the model
   (within the pixel-distance copy threshold); recall: the share of the distinct training images that the
   same samples copy (by exact search) which the candidates name. The memorising regimes are the positive
   controls: the attack must find their copies before its silence on a model trained on 60,000 digits means
   anything.

The models are read, not trained: `main`'s exported samplers, and the samplers the `onset` and `dose`
experiments keep for this purpose. The VAE is not among them: its exported sampler is not committed (data
budget), and a latent search on its blurry decoder cannot retrieve a crisp original anyway.
"""

from __future__ import annotations

import numpy as np

from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import draw, sampler_options, train_config, trained_then

#: regime -> (experiment, stage, folder of the model in that stage, family); the training set is the stage's. Beside
#: these, "diffusion_<n>" names the onset grid's kept diffusion run on n digits (`regime_source`).
REGIMES = {
    "diffusion": ("main", "model_diffusion", "model", "diffusion"),
    "gan": ("main", "model_gan", "model", "gan"),
    "canaries": ("dose", "reproduction_diffusion", "sampler", "diffusion"),
}
SUBSET_PREFIX = "diffusion_"


def subset_size(regime: str) -> int | None:
    """n for a "diffusion_<n>" regime (the onset grid's diffusion run on n digits), None for any other."""
    n = regime.removeprefix(SUBSET_PREFIX)
    return int(n) if regime.startswith(SUBSET_PREFIX) and n.isdigit() else None


def regime_source(regime: str) -> tuple[str, str, str, str]:
    """(experiment, stage, folder, family) of a regime's model: a fixed regime of `REGIMES`, or "diffusion_<n>",
    the onset grid's diffusion run on n digits whose final model it keeps (its `halves`)."""
    if regime in REGIMES:
        return REGIMES[regime]
    n = subset_size(regime)
    if n is not None:
        return ("onset", f"grid_diffusion_{n}", "sampler", "diffusion")
    raise KeyError(f"unknown extraction regime {regime!r}: one of {', '.join(REGIMES)} or diffusion_<n>")


def regime_order(regime: str) -> tuple[int, int]:
    """The order regimes are shown in: the models trained on all 60,000 digits, the subsets from small to large,
    then the canaries."""
    n = subset_size(regime)
    if n is not None:
        return (1, n)
    return {"diffusion": (0, 0), "gan": (0, 1)}.get(regime, (2, 0))


EXAMPLES_FILE = "examples.npz"
#: What counts as a copy when a label is the prompt (as in the onset grid, whose digits the label models share).
LABEL_CRITERION = "nn_ratio"
#: Completions kept with their images per prompt set and mask (the book's gallery: best and typical).
EXAMPLES_KEPT = 6


def _regime(ctx: StageContext):
    """The regime's model, its own training data spec, and the family."""
    from mnistmem import checkpoints

    experiment, stage, folder, family = regime_source(ctx.config["regime"])
    upstream = ctx.upstream(experiment)
    model = checkpoints.load_model(upstream.path(stage, folder))
    config = upstream.stage(stage)["config"]
    spec = config.get("data") or config.get("train", {}).get("data") or {}
    return model, spec, family


def _prompts(ctx: StageContext, spec: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(images, labels) of each prompt set: `training` (digits of the model's own set), `test` (test digits with
    the same labels, in the same order) and, where the set holds canaries, `canaries` (each once)."""
    from mnistmem import data
    from mnistmem.canaries import CANARY_LABEL
    from mnistmem.dataspec import DataSpec

    built = DataSpec.from_dict(spec).build()
    rng = np.random.default_rng(ctx.config["seed"])
    digits = np.flatnonzero(built.sources >= 0)
    chosen = rng.choice(digits, min(ctx.config["prompts"], len(digits)), replace=False)
    test, test_labels = data.load_mnist("test")
    matched = []
    for label in built.labels[chosen]:
        pool = np.flatnonzero(test_labels == label)
        matched.append(pool[rng.integers(len(pool))])
    sets = {
        "training": (built.images[chosen], built.labels[chosen]),
        "test": (test[np.asarray(matched)], test_labels[np.asarray(matched)]),
    }
    if (built.sources < 0).any():
        first = [int(np.flatnonzero(built.sources == s)[0]) for s in sorted(set(built.sources[built.sources < 0]))]
        sets["canaries"] = (built.images[first], np.full(len(first), CANARY_LABEL))
    return sets


def _training_facts(spec: dict) -> dict:
    """What the book says about a regime's training set: how many digits, and each planted canary (glyph and
    count) in the order the `canaries` prompt set holds them (source -1, -2, ... sorted: the spec's order
    reversed)."""
    from mnistmem.dataspec import DataSpec

    built = DataSpec.from_dict(spec).build()
    planted = (spec.get("canaries") or [])[::-1]
    return {
        "training_digits": int((built.sources >= 0).sum()),
        "canaries": [{"glyph": c["glyph"], "count": int(c["count"])} for c in planted if int(c["count"]) > 0],
    }


def completion_stage(ctx: StageContext) -> dict:
    """Completion from a partial image (see the module docstring), for every prompt set and mask."""
    from mnistmem import copies, extraction
    from mnistmem.atomic import write_atomic
    from mnistmem.stats import wilson_interval

    model, spec, family = _regime(ctx)
    bar = copies.CRITERIA["l2"].default_threshold
    options = {"steps": ctx.config["inpaint_steps"]} if family == "diffusion" else ctx.config["inversion"]
    rows, kept = [], {}
    for name, (images, _) in _prompts(ctx, spec).items():
        for mask_name in extraction.MASKS:
            mask = extraction.prompt_mask(mask_name)
            completed = extraction.complete(model, images, mask, seed=ctx.config["seed"], **options)
            hidden = extraction.hidden_distance(completed, images, mask)
            retrieved = int((hidden <= bar).sum())
            low, high = wilson_interval(retrieved, len(images))
            rows.append(
                {
                    "prompts": name,
                    "mask": mask_name,
                    "n": len(images),
                    "retrieved": retrieved,
                    "share": retrieved / len(images),
                    "ci_low": low,
                    "ci_high": high,
                    "median_hidden_distance": float(np.median(hidden)),
                    "best_hidden_distance": float(hidden.min()),
                }
            )
            if name == "canaries":  # each canary's own outcome (they were planted different numbers of times)
                rows[-1]["per_canary"] = [
                    {"retrieved": bool(d <= bar), "hidden_distance": float(d)} for d in hidden.tolist()
                ]
            order = np.argsort(hidden, kind="stable")
            # the best half first, then the typical (from the median on), each kept once, in that order
            picked = np.r_[order[: EXAMPLES_KEPT // 2], order[len(order) // 2 :][: EXAMPLES_KEPT // 2]]
            show = np.asarray(list(dict.fromkeys(picked.tolist())), dtype=int)
            kept[f"{name}_{mask_name}_original"] = images[show]
            kept[f"{name}_{mask_name}_completion"] = completed[show]
            kept[f"{name}_{mask_name}_distance"] = hidden[show]
    write_atomic(ctx.dir / EXAMPLES_FILE, lambda h: np.savez_compressed(h, **kept))
    return {"regime": ctx.config["regime"], "family": family, "bar": bar, **_training_facts(spec), "rows": rows}


def membership_stage(ctx: StageContext) -> dict:
    """Membership inference from the model's own loss: its training digits against test digits; where canaries
    were planted, each canary's loss as a percentile of the test digits' losses."""
    from mnistmem import extraction

    model, spec, family = _regime(ctx)
    sets = _prompts(ctx, spec)
    losses = {name: model.eval().loss(images, seed=ctx.config["seed"]) for name, (images, _) in sets.items()}
    result = {
        "regime": ctx.config["regime"],
        "family": family,
        **_training_facts(spec),
        **extraction.membership(losses["training"], losses["test"]),
    }
    if "canaries" in losses:
        result["canary_loss_percentile"] = [float((losses["test"] < v).mean()) for v in losses["canaries"]]
    return result


def blind_stage(ctx: StageContext) -> dict:
    """Generate-and-filter without the training data, scored against the exact search of the same samples."""
    from mnistmem import copies, extraction
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.storage import CLUSTER_DISTANCE, MIN_CLUSTER

    model, spec, family = _regime(ctx)
    images, _ = draw(model, ctx.config)
    own = DataSpec.from_dict(spec).build().images
    bar = copies.CRITERIA["l2"].default_threshold
    found = extraction.blind_candidates(images, own, bar, CLUSTER_DISTANCE, MIN_CLUSTER, ctx.config["candidates"])
    return {"regime": ctx.config["regime"], "family": family, **_training_facts(spec), **found}


def label_stage(ctx: StageContext) -> dict:
    """A label as the prompt: a class-conditional diffusion model asked for each digit in turn, against the same
    model asked for nothing (it was trained to answer both, `p_uncond`), so the comparison is like with like. For
    each label: the share of samples that are copies of one of the model's own training digits (ratio test,
    judged against its own set, with 95% intervals), and the share whose nearest own digit carries the label asked
    for (does the prompt steer it?)."""
    from mnistmem import checkpoints, copies, data
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.stages import score_against_own_training_set
    from mnistmem.stats import wilson_interval

    model = checkpoints.load_model(ctx.input(ctx.config["from"]) / "model")
    spec = ctx.config["data"]
    built = DataSpec.from_dict(spec).build()
    test, _ = data.load_mnist("test")
    rows = []
    for label in [*range(10), None]:
        config = {**ctx.config, "label": label, "n": ctx.config["n"] * (10 if label is None else 1)}
        images, seeds = draw(model, config)
        table, _ = score_against_own_training_set(images, seeds, spec, test)
        flagged = table.flags[LABEL_CRITERION]
        count = int(flagged.sum())
        low, high = wilson_interval(count, len(images))
        nearest_labels = built.labels[table.nn_index[:, 0]]
        rows.append(
            {
                "label": label,
                "n": len(images),
                "copies": count,
                "share": count / len(images),
                "ci_low": low,
                "ci_high": high,
                "distinct_copied": len(np.unique(copies.nearest_under(table, LABEL_CRITERION)[flagged])),
                "nearest_has_label": None if label is None else float((nearest_labels == label).mean()),
            }
        )
    return {"criterion": LABEL_CRITERION, "training_digits": len(built), "rows": rows}


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "extraction")
    stages = []
    for regime in settings["regimes"]:
        family = regime_source(regime)[3]
        base = {"regime": regime, "prompts": settings["prompts"], "seed": 5}
        stages += [
            Stage(
                f"completion_{regime}",
                {**base, "inpaint_steps": settings["inpaint_steps"], "inversion": settings["inversion"]},
                completion_stage,
            ),
            Stage(f"membership_{regime}", base, membership_stage),
            Stage(
                f"blind_{regime}",
                {
                    "regime": regime,
                    "n": settings["blind_samples"],
                    "seed": 6,
                    "candidates": settings["candidates"],
                    "sampler": sampler_options(scale, family, trained=regime_source(regime)[0] == "main"),
                },
                blind_stage,
            ),
        ]
    onset = scales.config(scale, "onset")
    for n in settings["label_sizes"]:
        data = {"n": 2 * n, "seed": 0, "part": [0, 2]}  # the digits of the onset grid's unconditional run
        recipe = scales.config(scale, "onset_recipes")["diffusion"]
        train = train_config(
            scale,
            "diffusion",
            data=data,
            section="onset_recipes",
            steps=onset["grid"][-1],
            model_kwargs={**recipe["model_kwargs"], "num_classes": 10},
        )
        config = {"n": settings["per_label"], "seed": 7, "data": data, "sampler": sampler_options(scale, "diffusion")}
        stages += trained_then(f"label_{n}", train, f"label_{n}", config, label_stage)
    return stages


EXPERIMENT = Experiment(
    name="extraction",
    question="Can someone who does not already have a training image get it out of the model?",
    plan=plan,
    requires=("main", "onset", "dose"),
)
