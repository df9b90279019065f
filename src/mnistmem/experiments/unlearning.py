"""Unlearning: can a generative model be made to forget one training item, at what cost, and does it stay gone?

Question: a diffusion model is trained on a few hundred digits plus one canary (a © glyph) planted many
times. Two items are then forgotten, each chosen from the results, not by hand: (a) the canary, which the
model clearly reproduces, and (b) the training digit the model's samples copy most often (found by exact
search over all 60,000 training digits; if no digit is copied, the summary says so and (b) is skipped).
Each is forgotten by retraining from scratch (exact; the cost baseline), SISA shard retraining, fine-tuning
on the retained data, NegGrad, and by adding the weight "diff" to another model. For each: how often the
item (and a control item that was not forgotten) still appears among N samples, how close the closest sample
comes, sample quality, compute cost, a loss-based membership signal, and whether the item comes back after a
short further training without it ("relearning").
Expected: retraining removes the item at full cost; SISA removes it at a fraction of the cost but smaller
shards memorise more and sample worse (Bourtoule et al. 2021 report 1.4–4.6× speed-ups); fine-tuning and
NegGrad are cheap but may only hide the item (SISS, arXiv 2503.01034); the diff is specific to the pair of
models it was computed from.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext

TARGETS = ("canary", "digit")
METHODS = ("retrain", "sisa", "finetune", "neggrad", "diff")
SAMPLES = "samples.npz"
RELEARNED = "relearned.npz"
DIFF_FILE = "diff.npz"
GLYPH = "copyright"
UNSEEN = 200  # test digits for the membership signal
RELEARN_NEARBY = 5  # look-alike digits the relearning attack adds to the retained data
#: the experiments issue's gate: a method can only be told apart on an item its base model reproduces this often
BASE_SHARE_GATE = 0.05


# ------------------------------------------------------------------------------------------------ shared
#: every model of this experiment is a run of the project trainer in its stage's scratch/<RUN>
RUN = "run"
RELEARN_RUN = "relearn"


def original_config(config: dict):
    """The `TrainConfig` of the base model (the stage config's "train"): every method is configured from it."""
    from mnistmem.training import TrainConfig

    return TrainConfig.from_dict(config["train"])


def spec_of(config: dict):
    return original_config(config).data


def run_of(ctx: StageContext, stage: str):
    """The trainer's run folder of an earlier stage's model (its latest checkpoint is the model)."""
    return ctx.input(stage) / "scratch" / RUN


@lru_cache(maxsize=2)
def _reference(canaries: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    from mnistmem import data
    from mnistmem.canaries import render_canaries
    from mnistmem.unlearn.measures import reference_set

    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    return reference_set(train, render_canaries(list(canaries))), test


def reference(config: dict) -> tuple[np.ndarray, np.ndarray]:
    """(all training digits + the canary glyphs, the test digits)."""
    return _reference(tuple(c.glyph for c in spec_of(config).canaries))


def items_of(ctx: StageContext) -> dict:
    """The targets chosen by the `choose` stage."""
    return ctx.summaries["choose"]["items"]


def draw_and_search(config: dict, models: list, weights=None) -> tuple:
    """(images, seeds, shard, nn_distance, nn_index): the samples (one model, or a SISA mixture weighted by shard
    size, through the one sampler) and their two nearest reference images."""
    from mnistmem import sampling
    from mnistmem.unlearn import measures

    images, seeds, shard = sampling.sample_mixture(
        models, weights, config["n_samples"], seed=config["sample_seed"], progress=False, **config["sampler"]
    )
    return (images, seeds, shard, *measures.nearest(images, reference(config)[0]))


#: Of every sample set only these images are stored (the rest are blank and regenerate from their seeds): the
#: first GALLERY samples (the book's galleries), and per item the CLOSEST samples nearest to it and up to
#: HITS_KEPT of those that reproduce it.
GALLERY = 30
CLOSEST = 8
HITS_KEPT = 16


def score_own(images: np.ndarray, seeds: np.ndarray, data_spec: dict) -> tuple:
    """(table, baseline, sources): the samples scored by every criterion against the base model's own distinct
    training data (the digits and the canary, once; `stages.score_against_own_training_set`), and the source of
    every row of that data, so that a copy of any of a canary's rows counts as a copy of the canary."""
    from mnistmem import data
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.stages import score_against_own_training_set

    test, _ = data.load_mnist("test")
    table, baseline = score_against_own_training_set(images, seeds, data_spec, test)
    return table, baseline, DataSpec.from_dict(data_spec).build().sources


def judge(scored: tuple, roles: dict) -> dict:
    """The book's one definition of a copy applied to one sample set (`scored`, from `score_own`): a sample
    reproduces an item when a criterion flags it and the nearest training image under that criterion is the
    item. Returns {"roles": {role: {hits, n, share, by_criterion, samples}}, "criteria": the criteria summary};
    `samples` are the headline criterion's hits."""
    from mnistmem import copies

    table, baseline, sources = scored
    judged = {}
    for role, item in roles.items():
        if item is None or int(item["source"]) not in sources:
            continue  # a control digit the model was not trained on: nothing of its own to copy
        by, headline_hits = {}, np.zeros(0, dtype=np.int64)
        for name, flags in table.flags.items():
            hits = flags & (sources[copies.nearest_under(table, name)] == int(item["source"]))
            by[name] = {"hits": int(hits.sum()), "n": len(hits), "share": float(hits.mean())}
            if name == copies.HEADLINE:
                headline_hits = np.flatnonzero(hits)
        judged[role] = {**by[copies.HEADLINE], "by_criterion": by, "samples": headline_hits[:HITS_KEPT].tolist()}
    return {"roles": judged, "criteria": copies.summarize(table, baseline)}


def save_shown(path, images: np.ndarray, seeds: np.ndarray, keep: np.ndarray) -> None:
    """The samples file of a sample set: every seed, and the images of the `keep` samples only (the others are
    zero and `stored` is False for them; they regenerate from their seeds with the stage's model)."""
    from mnistmem.results import save_samples

    stored = np.zeros(len(images), dtype=bool)
    stored[keep] = True
    save_samples(path, np.where(stored[:, None, None], images, 0).astype(np.uint8), seeds, stored=stored)


def evaluate(
    ctx: StageContext, models: list, weights, loss_fn, roles: dict, file: str, drawn=None, scored=None
) -> dict:
    """Samples from the model (or mixture), and every measure for both items; the shown samples go to `file`.
    `verdict` holds the book's judgement of the set (`judge`). `drawn` and `scored`: the samples and their
    `score_own` scores where the caller already has them."""
    from mnistmem.neighbors import pixel_distances
    from mnistmem.unlearn import measures

    config = ctx.config
    ref, test = reference(config)
    n_train = len(ref) - len(spec_of(config).canaries)
    images, seeds, shard, distance, index = drawn or draw_and_search(config, models, weights)
    out = {"copy_share": measures.copy_share(distance), **measures.quality(images, test)}
    unseen = test[: config["unseen"]]
    keep = set(range(min(GALLERY, len(images))))
    for role, item in roles.items():
        if item is None:
            continue
        ref_row = measures.reference_index(item["source"], n_train)
        out[role] = {
            "item": item,
            **measures.reproduction(images, ref[ref_row], ref_row, distance, index),
            "membership": measures.membership(loss_fn, ref[ref_row], unseen),
        }
        keep |= set(np.argsort(pixel_distances(images, ref[ref_row]), kind="stable")[:CLOSEST].tolist())
        keep |= set(out[role]["hit_samples"])
    if scored is None:
        scored = score_own(images, seeds, config["train"]["data"])
    out["verdict"] = {"file": file, **judge(scored, roles)}
    for verdict in out["verdict"]["roles"].values():
        keep |= set(verdict["samples"])
    save_shown(ctx.dir / file, images, seeds, np.array(sorted(keep), dtype=np.int64))
    if len(models) > 1:
        # Copying per shard model, from the samples each drew: do smaller shards memorise more?
        out["per_shard_copy_share"] = [
            measures.copy_share(distance[shard == k]) if (shard == k).any() else None for k in range(len(models))
        ]
    return out


def roles(items: dict, forgotten: dict | None) -> dict:
    """{"forgotten": item, "control": the other item}; before any forgetting, both items by kind."""
    if forgotten is None:
        return {"canary": items["canary"], "digit": items["digit"] or items["digit_control"]}
    other = "digit" if forgotten["kind"] == "canary" else "canary"
    return {"forgotten": forgotten, "control": items[other] or items["digit_control"]}


def single(checkpoint) -> tuple[list, None, object]:
    """([the model at `checkpoint`, EMA weights], no mixture weights, its per-example loss)."""
    from mnistmem import checkpoints

    model = checkpoints.load_model(checkpoint)
    return [model], None, (lambda x: model.loss(x, seed=0))


# ------------------------------------------------------------------------------------------------ stages
def base_stage(ctx: StageContext) -> dict:
    """Train the base model (seed of the config's "train") on the data with both items."""
    from mnistmem.unlearn import run

    original = original_config(ctx.config)
    _, cost = run(original, ctx.scratch / RUN, deadline=ctx.deadline)
    return {"rows": len(original.data.build()), "cost": cost.to_dict(), "seed": original.seed}


def nearby(config: dict, image: np.ndarray, held: np.ndarray) -> dict:
    """The relearning attack's handful for one item: the config's `relearn_nearby` MNIST digits nearest to it
    that the base model never trained on, none within the `l2` copy threshold of it (`items.nearby_digits`)."""
    from mnistmem import data
    from mnistmem.copies import CRITERIA
    from mnistmem.unlearn.items import nearby_digits

    train, _ = data.load_mnist("train")
    index, distance = nearby_digits(image, train, held, config["relearn_nearby"], CRITERIA["l2"].default_threshold)
    return {"index": index.tolist(), "distance": [round(float(d), 3) for d in distance]}


def copied_digits(scored: tuple) -> np.ndarray:
    """The MNIST index of the training digit each sample copies by the book's headline definition (`scored`, from
    `score_own`, as `judge` reads it), or -1 for a sample that copies none."""
    from mnistmem import copies

    table, _, sources = scored
    source = sources[copies.nearest_under(table, copies.HEADLINE)]
    return np.where(table.flags[copies.HEADLINE] & (source >= 0), source, -1)


def choose_stage(ctx: StageContext) -> dict:
    """Sample the base model and pick what to forget: the canary, and the training digit its samples copy most
    often by the book's headline definition (`copied_digits`)."""
    from mnistmem.copies import HEADLINE
    from mnistmem.unlearn import measures

    config = ctx.config
    spec = spec_of(config)
    ref, _ = reference(config)
    n_train = len(ref) - len(spec.canaries)
    models, _, loss_fn = single(run_of(ctx, "base"))
    drawn = draw_and_search(config, models)
    images, seeds, _, distance, index = drawn
    own = spec.indices()
    scored = score_own(images, seeds, config["train"]["data"])  # scored once: chooses the digit and judges the set
    copied = copied_digits(scored)
    counts = np.bincount(copied[copied >= 0], minlength=n_train)
    canary = {
        "source": -1,
        "kind": "canary",
        "name": f"canary {GLYPH} ({spec.canaries[0].count} copies)",
    }
    digit = None
    if counts.max() > 0:
        best = int(np.argmax(counts))  # ties: the lowest index
        digit = {"source": best, "kind": "digit", "name": f"training digit #{best}", "times_copied": int(counts[best])}
        control = digit
        note = f"training digit #{best} is copied by {int(counts[best])} of {len(images)} base-model samples"
    else:
        own_mask = np.isin(index[:, 0], own)
        pool = np.flatnonzero(own_mask) if own_mask.any() else np.arange(len(images))
        closest = int(index[pool[np.argmin(distance[pool, 0])], 0])
        control = {"source": closest, "kind": "digit", "name": f"training digit #{closest}", "times_copied": 0}
        note = (
            f"no training digit is copied by any of the {len(images)} base-model samples (by the {HEADLINE} "
            f"definition); only the canary is forgotten. The control is the training digit closest to any sample, "
            f"#{closest}."
        )
    items = {"canary": canary, "digit": digit, "digit_control": control, "note": note}
    for item in (canary, digit):
        if item is not None:
            item["nearby"] = nearby(config, ref[measures.reference_index(item["source"], n_train)], own)
    before = evaluate(ctx, models, None, loss_fn, roles(items, None), SAMPLES, drawn, scored)
    copied_index, times = np.unique(copied[copied >= 0], return_counts=True)
    order = np.argsort(-times, kind="stable")
    return {
        "items": items,
        "before": before,
        "base_share": base_share(before),
        "copied_training_images": {
            "criterion": HEADLINE,
            "index": copied_index[order].tolist(),
            "times": times[order].tolist(),
        },
    }


def base_share(before: dict) -> dict:
    """How often a base model (or SISA ensemble) reproduces each item before any forgetting, by the book's
    definition of a copy, and whether that clears `BASE_SHARE_GATE`: a method can only be told apart from
    doing nothing on an item its base reproduces."""
    from mnistmem.onset import share_interval

    out = {}
    for kind, verdict in before["verdict"]["roles"].items():
        _, low, high = share_interval(verdict["hits"], verdict["n"])
        out[kind] = {
            "share": verdict["share"],
            "hits": verdict["hits"],
            "n": verdict["n"],
            "ci": [low, high],
            "meets_gate": bool(verdict["share"] >= BASE_SHARE_GATE),
        }
    return out


def other_seed_stage(ctx: StageContext) -> dict:
    """A second base model, same data, another seed: the noise floor for weight differences, and a model to
    add the diff to."""
    return base_stage(ctx)


def _target(ctx: StageContext) -> dict | None:
    return items_of(ctx)[ctx.config["target"]]


def _skipped(ctx: StageContext) -> dict:
    return {"skipped": items_of(ctx)["note"]}


def _finish(ctx: StageContext, checkpoint, cost, target: dict, extra: dict | None = None) -> dict:
    """Evaluate a single-model result, relearn it (a run continuing it without the item), evaluate again."""
    from mnistmem.unlearn import relearn

    original = original_config(ctx.config)
    models, weights, loss_fn = single(checkpoint)
    after = evaluate(ctx, models, weights, loss_fn, roles(items_of(ctx), target), SAMPLES)
    relearned_run, relearn_cost = relearn(
        original,
        checkpoint,
        target["source"],
        ctx.config["relearn_steps"],
        original.seed + 7,
        ctx.scratch / RELEARN_RUN,
        nearby=tuple(target["nearby"]["index"]),
        deadline=ctx.deadline,
    )
    models, weights, loss_fn = single(relearned_run)
    relearned = evaluate(ctx, models, weights, loss_fn, roles(items_of(ctx), target), RELEARNED)
    return {
        "target": target,
        "cost": cost.to_dict(),
        "after": after,
        "relearned": {**relearned, "cost": relearn_cost.to_dict()},
        **(extra or {}),
    }


def retrain_stage(ctx: StageContext) -> dict:
    from mnistmem.unlearn import retrain

    target = _target(ctx)
    if target is None:
        return _skipped(ctx)
    final, cost = retrain(original_config(ctx.config), target["source"], ctx.scratch / RUN, deadline=ctx.deadline)
    return _finish(ctx, final, cost, target)


def finetune_stage(ctx: StageContext) -> dict:
    from mnistmem.unlearn import finetune

    target = _target(ctx)
    if target is None:
        return _skipped(ctx)
    original = original_config(ctx.config)
    final, cost = finetune(
        original,
        run_of(ctx, "base"),
        target["source"],
        ctx.config["finetune_steps"],
        original.seed + 3,
        ctx.scratch / RUN,
        deadline=ctx.deadline,
    )
    return _finish(ctx, final, cost, target)


def neggrad_stage(ctx: StageContext) -> dict:
    from mnistmem.unlearn import neggrad

    target = _target(ctx)
    if target is None:
        return _skipped(ctx)
    original = original_config(ctx.config)
    final, cost = neggrad(
        original,
        run_of(ctx, "base"),
        target["source"],
        ctx.config["finetune_steps"],
        original.seed + 5,
        ctx.scratch / RUN,
        forget_weight=ctx.config["forget_weight"],
        deadline=ctx.deadline,
    )
    return _finish(ctx, final, cost, target, {"forget_weight": ctx.config["forget_weight"]})


def sisa_train_stage(ctx: StageContext) -> dict:
    """Train the SISA ensemble on the data with both items and evaluate it before any forgetting."""
    from mnistmem.unlearn import sisa
    from mnistmem.unlearn.measures import ensemble_loss

    config = ctx.config
    original = original_config(config)
    seed = original.seed
    layout, cost = sisa.train(
        original,
        config["shards"],
        config["slices"],
        config["shard_steps"],
        seed,
        ctx.scratch / "sisa",
        deadline=ctx.deadline,
    )
    sizes = sisa.shard_sizes(original, config["shards"], config["slices"], seed)
    models = sisa.load_models(layout)
    before = evaluate(ctx, models, sizes, ensemble_loss(models), roles(items_of(ctx), None), SAMPLES)
    return {
        "cost": cost.to_dict(),
        "shard_sizes": sizes.tolist(),
        "before": before,
        "base_share": base_share(before),
    }


def sisa_forget_stage(ctx: StageContext) -> dict:
    from dataclasses import replace

    from mnistmem.unlearn import sisa, spec_without
    from mnistmem.unlearn.measures import ensemble_loss

    config = ctx.config
    target = _target(ctx)
    if target is None:
        return _skipped(ctx)
    original = original_config(config)
    seed = original.seed
    layout = sisa.SisaLayout(ctx.input("sisa_train") / "scratch" / "sisa", config["shards"], config["slices"])
    new, cost, info = sisa.forget(
        layout, original, target["source"], config["shard_steps"], seed, ctx.scratch / "sisa", deadline=ctx.deadline
    )
    kept = replace(original, data=spec_without(original.data, target["source"]))
    sizes = sisa.shard_sizes(kept, config["shards"], config["slices"], seed)
    models = sisa.load_models(new)
    after = evaluate(ctx, models, sizes, ensemble_loss(models), roles(items_of(ctx), target), SAMPLES)
    # Relearning: every shard model trains a little more on its own retained data (the same total steps).
    finals, relearn_cost = sisa.relearn(
        new,
        original,
        target["source"],
        config["relearn_steps"],
        seed + 7,
        seed,
        ctx.scratch / RELEARN_RUN,
        nearby=tuple(target["nearby"]["index"]),
        deadline=ctx.deadline,
    )
    relearned_models = sisa.load_models(finals)
    relearned = evaluate(
        ctx, relearned_models, sizes, ensemble_loss(relearned_models), roles(items_of(ctx), target), RELEARNED
    )
    return {
        "target": target,
        "cost": cost.to_dict(),
        **info,
        "after": after,
        "relearned": {**relearned, "cost": relearn_cost.to_dict()},
    }


def diff_stage(ctx: StageContext) -> dict:
    """The weight difference retrained − base: its size per layer against seed noise and fine-tuning, and what
    adding it to the other-seed model and to the fine-tuned model does."""
    from mnistmem import checkpoints
    from mnistmem.unlearn import diff

    target = _target(ctx)
    if target is None:
        return _skipped(ctx)
    base = checkpoints.load_model(run_of(ctx, "base"))
    retrained = checkpoints.load_model(run_of(ctx, f"retrain_{ctx.config['target']}"))
    other = checkpoints.load_model(run_of(ctx, "other_seed"))
    tuned = checkpoints.load_model(run_of(ctx, f"finetune_{ctx.config['target']}"))
    reference_weights = diff.weights(base)
    delta = diff.difference(retrained, base)
    rows = {
        "item": diff.layer_norms(delta, reference_weights),
        "seed": diff.layer_norms(diff.difference(other, base), reference_weights),
        "finetune": diff.layer_norms(diff.difference(tuned, base), reference_weights),
    }
    layers = [r["layer"] for r in rows["item"]]
    write_atomic(
        ctx.dir / DIFF_FILE,
        lambda h: np.savez_compressed(
            h,
            layers=np.array(layers),
            **{f"{k}_relative": np.array([r["relative"] for r in v]) for k, v in rows.items()},
            **{f"{k}_norm": np.array([r["diff_norm"] for r in v]) for k, v in rows.items()},
        ),
    )
    applied = {}
    for name, host in (("other_seed", other), ("finetune", tuned)):
        for scale in ctx.config["diff_scales"]:
            model = diff.apply(host, delta, scale)
            tick = time.perf_counter()
            key = f"{name}_x{scale:g}"
            result = evaluate(
                ctx,
                [model],
                None,
                lambda x, m=model: m.loss(x, seed=0),
                roles(items_of(ctx), target),
                f"samples_{key}.npz",
            )
            applied[key] = {"host": name, "scale": scale, **result, "seconds": round(time.perf_counter() - tick, 1)}
    total = {k: v[-1] for k, v in rows.items()}
    return {"target": target, "norms": total, "applied": applied, "file": DIFF_FILE}


# ------------------------------------------------------------------------------------------------ verdicts
def _sample_files(summary: dict, stage: str) -> dict[str, tuple[str, dict]]:
    """{file: (which measurement, the roles it was measured for)} of one stage's stored sample sets."""
    if stage in ("choose", "sisa_train"):  # the base model's samples, and the SISA ensemble's before forgetting
        return {SAMPLES: ("before", summary["before"])}
    if stage.startswith("diff_"):
        return {f"samples_{key}.npz": (f"applied:{key}", a) for key, a in summary.get("applied", {}).items()}
    out = {}
    if "after" in summary:
        out[SAMPLES] = ("after", summary["after"])
    if summary.get("relearned"):
        out[RELEARNED] = ("relearned", summary["relearned"])
    return out


def verdicts_stage(ctx: StageContext) -> dict:
    """Every stored sample set of every stage as the book's one definition of a copy judged it (`judge`, run
    by `evaluate` while the samples were at hand), gathered in one place: {stage: {measurement: {file, roles,
    criteria}}}. The book and the law chapter read how often an item comes back from here."""
    from mnistmem import copies

    judged: dict[str, dict] = {}
    for stage in ctx.config["stages"]:
        summary = ctx.summaries[stage]
        for file, (label, measured) in _sample_files(summary, stage).items():
            verdict = measured["verdict"]
            if verdict["file"] != file:
                raise ValueError(f"unlearning stage {stage}: its {label} samples were judged as {verdict['file']}")
            judged.setdefault(stage, {})[label] = verdict
    return {"headline": copies.HEADLINE, "judged": judged}


# -------------------------------------------------------------------------------------------------- plan
def plan(scale: str) -> list[Stage]:
    s = scales.config(scale, "unlearning")
    # What a training from scratch depends on: the base and other-seed models are keyed by this alone, so
    # changing how the item is forgotten or measured does not retrain them. A `TrainConfig`: every model of
    # the experiment is a run of the project trainer configured from it. The recipe is the onset grid's (the
    # one shown there to memorise a small training set within these steps), so that the base model reproduces
    # what it is asked to forget.
    train = {
        "model": "diffusion",
        **scales.config(scale, "onset_recipes")["diffusion"],
        "data": {"n": s["n"], "seed": 0, "canaries": [{"glyph": GLYPH, "count": s["canary_count"]}]},
        "steps": s["steps"],
        "seed": 0,
        "checkpoint_every": s["steps"],
    }
    training = {"train": train}
    common = {
        **training,
        "n_samples": s["n_samples"],
        "sample_seed": 1,
        "sampler": s.get("sampler", scales.config(scale, "main")["sampler"]),
        "unseen": s.get("unseen", UNSEEN),
        "finetune_steps": s["finetune_steps"],
        "relearn_steps": s["relearn_steps"],
        "relearn_nearby": s.get("relearn_nearby", RELEARN_NEARBY),
        "forget_weight": s.get("forget_weight", 1.0),
        "shards": s["shards"],
        "slices": s["slices"],
        "shard_steps": s.get("shard_steps", max(s["slices"], s["steps"] // s["shards"])),
        "diff_scales": s.get("diff_scales", [1.0]),
    }
    stages = [
        Stage("base", training, base_stage),
        Stage("choose", common, choose_stage, after=("base",)),
        Stage("other_seed", {"train": {**train, "seed": 1}}, other_seed_stage),
        Stage("sisa_train", common, sisa_train_stage, after=("choose",)),
    ]
    for target in TARGETS:
        cfg = {**common, "target": target}
        stages += [
            Stage(f"retrain_{target}", cfg, retrain_stage, after=("choose",)),
            Stage(f"finetune_{target}", cfg, finetune_stage, after=("base", "choose")),
            Stage(f"neggrad_{target}", cfg, neggrad_stage, after=("base", "choose")),
            Stage(f"sisa_{target}", cfg, sisa_forget_stage, after=("choose", "sisa_train")),
            Stage(
                f"diff_{target}",
                cfg,
                diff_stage,
                after=("base", "choose", "other_seed", f"retrain_{target}", f"finetune_{target}"),
            ),
        ]
    measured = [st.name for st in stages if st.name in ("choose", "sisa_train") or st.name.split("_")[-1] in TARGETS]
    from mnistmem.copies import HEADLINE

    stages.append(
        Stage(
            "verdicts",
            {"data": train["data"], "stages": measured, "headline": HEADLINE},
            verdicts_stage,
            after=tuple(measured),
        )
    )
    return stages


EXPERIMENT = Experiment(
    name="unlearning",
    question="Can a model be made to forget one training item, at what cost, and does the item stay gone?",
    plan=plan,
)
