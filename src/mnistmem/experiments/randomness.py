"""Randomness: does a copied training image come from one lucky seed, or from many?

Question: for every training image that a model copied (nearest-neighbour ratio test), how many distinct
random seeds produced a copy of it? And can a copy be regenerated, bit for bit, from its stored seed alone
(and how closely on a CPU of another kind)?
Expected: memorised images come back from many different seeds (the output is not a random accident but
a fixed point the model returns to), and a stored seed regenerates the identical image, because sampling
is a deterministic function of the seed and the weights.
"""

from __future__ import annotations

import numpy as np

from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import MODEL_DIR, sample_batch_size

REGENERATE = 5
#: samples per model whose regeneration from the seed is compared with the stored bytes, by scale
REGENERATION_CHECK = {"smoke": 16, "cpu": 512, "gpu": 512}


#: The experiments whose scored sample sets this one reads: the models trained on all 60,000 digits, and the
#: diffusion model trained on 100 digits (which copies).
SCORED = ("main", "small")


def scored_models(ctx: StageContext) -> list[tuple[str, str, str]]:
    """(experiment, score stage, its sample stage) for every scored sample set in `SCORED`."""
    out = []
    for experiment in SCORED:
        manifest = ctx.upstream(experiment).manifest
        for name in manifest["stages"]:
            if name.startswith("score_"):
                out.append((experiment, name, "sample_" + name.removeprefix("score_")))
    return out


def seeds_stage(ctx: StageContext) -> dict:
    """For every scored model: how many distinct seeds produced a copy of each copied training image, and the
    first copies regenerated from their stored seed alone on this machine (with the thread count that drew
    them), recording which kind of CPU drew them and which regenerated them: bit-exactness is promised only on
    the same kind (`regeneration_stage`)."""
    from mnistmem import checkpoints, copies, results, sampling
    from mnistmem.devices import cpu_summary, torch_threads
    from mnistmem.experiments.stages import drawn_from

    here = cpu_summary()
    models = []
    for experiment, score, sample in scored_models(ctx):
        result = ctx.upstream(experiment)
        table = result.table(score)
        images, seeds = result.samples(sample)
        criterion = ctx.config["criterion"]
        flagged = np.flatnonzero(table.flags[criterion])
        nearest = copies.nearest_under(table, criterion)[flagged]
        copied, seed_counts = np.unique(nearest, return_counts=True)  # each sample has its own seed
        record = result.stage(sample)
        drawn = drawn_on(record)
        regenerated, note = [], None
        source, stage, folder = drawn_from(result, sample)
        try:
            model_dir = source.path(stage, folder) if len(flagged) else None
        except results.ResultError:  # weights left out of the data budget (the VAE): no regeneration check
            model_dir, note = None, "weights not committed (data budget): seeds not regenerated"
        if model_dir is not None:
            model = checkpoints.load_model(model_dir)
            with torch_threads(drawn_threads(result.manifest, record)):
                for i in flagged[:REGENERATE]:
                    again = sampling.regenerate(model, int(seeds[i]), **_sampler_kwargs(result, sample))
                    regenerated.append(
                        {"sample": int(i), "seed": int(seeds[i]), "identical": bool(np.array_equal(again, images[i]))}
                    )
        order = np.argsort(-seed_counts, kind="stable")
        models.append(
            {
                "experiment": experiment,
                "model": score.removeprefix("score_"),
                "n_samples": len(table),
                "copies": len(flagged),
                "copied_training_images": len(copied),
                "seeds_per_copied_image": {"index": copied[order].tolist(), "seeds": seed_counts[order].tolist()},
                "reproduced_by_several_seeds": int((seed_counts >= 2).sum()),
                "drawn_on": drawn,
                # the same kind of CPU (and thread count) that drew them: the case where bit-exactness is promised
                "same_cpu_kind": drawn is not None and drawn.get("kind") == here.get("kind"),
                "regenerated": regenerated,
                "regeneration_note": note,
            }
        )
    return {"regenerated_on": here, "models": models}


def regeneration_stage(ctx: StageContext) -> dict:
    """Regenerate the first samples of every `main` model from their stored seeds on *this* machine.

    Says how many are bit-identical to the stored bytes and how far the others are, with the CPU that drew
    them (when its stage record names it) and the CPU that regenerated them: bit-exactness holds on the
    same CPU kind and thread count; across kinds the floating-point kernels differ (`mnistmem.sampling`).
    """
    from mnistmem import checkpoints, sampling
    from mnistmem.devices import cpu_summary, torch_threads

    main = ctx.upstream("main")
    models = []
    for name, record in sorted(main.manifest["stages"].items()):
        if not name.startswith("sample_"):
            continue
        tag = name.removeprefix("sample_")
        train = record["config"]["from"]
        entry = {"model": tag, "drawn_on": drawn_on(record), "drawn_threads": drawn_threads(main.manifest, record)}
        if not (main.dir / main.stage(train)["folder"] / MODEL_DIR / checkpoints.STATE).exists():
            models.append({**entry, "skipped": "its weights are not committed"})
            continue
        model = checkpoints.load_model(main.path(train, MODEL_DIR))  # verified against its recorded hashes
        images, seeds = main.samples(name)
        n = min(len(images), ctx.config["per_model"])
        with torch_threads(entry["drawn_threads"]):
            found = sampling.compare_regenerated(model, images[:n], seeds[:n], **_sampler_kwargs(main, name))
        models.append({**entry, **found})
    return {"regenerated_on": cpu_summary(), "models": models}


def drawn_on(stage_record: dict) -> dict | None:
    """The CPU (model, kind, flags) that ran a stage, or None when its record predates recording it."""
    return (stage_record.get("hardware") or {}).get("cpu")


def drawn_threads(manifest: dict, stage_record: dict) -> int:
    """The torch thread count a stage ran with: recorded since 2026-12-01, read from the device text
    ("cpu (x86_64, 1 threads)") of records written before."""
    import re

    hardware = stage_record.get("hardware") or manifest.get("hardware") or {}
    if "threads" in hardware:
        return int(hardware["threads"])
    found = re.search(r"(\d+) thread", hardware.get("device", ""))
    return int(found.group(1)) if found else 1


def _sampler_kwargs(result, sample: str) -> dict:
    config = result.stage(sample)["config"]
    return {"batch_size": sample_batch_size(config), **config.get("sampler", {})}


def plan(scale: str) -> list[Stage]:
    from mnistmem.copies import HEADLINE

    return [
        Stage("seeds", {"regenerate": REGENERATE, "criterion": HEADLINE}, seeds_stage),
        Stage("regeneration", {"per_model": REGENERATION_CHECK[scale]}, regeneration_stage),
    ]


EXPERIMENT = Experiment(
    name="randomness",
    question="Is a copied training image reproduced by one lucky seed or by many, and does its seed regenerate it?",
    plan=plan,
    requires=("calibration", "main", "small"),
)
