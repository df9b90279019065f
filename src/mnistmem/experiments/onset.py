"""Onset: when, during training, does a model start to copy, and how does that moment depend on how many images
it was trained on?

Question: for models trained on random subsets of n digits (the diffusion model at six sizes from 100 to
3,200, the GAN and the VAE at three), what share of samples are copies at each checkpoint of one grid of
training steps (250, 500, 1,000, ... at the cpu scale), and at which step does that share first rise beyond
what independent test digits give? Expected (Bonnaire et al., NeurIPS 2025): a diffusion model draws good
digits after roughly the same number of steps whatever n is, but starts to copy after a number of steps that
grows in proportion to n, so that a large enough training set keeps it in the window where it generalises.

Training-set size is easy to confound with passes over the data: 8,000 steps of 64 images are 5,120 passes
over 100 digits and 160 over 3,200. The grid doubles the steps as the sizes double, so the same checkpoints
give both comparisons: at equal steps (one column of the grid) and at equal passes (its diagonal). Every
row records both, and the `onset` stage lists both.

A copy here is what the nearest-neighbour ratio test says (Yoon et al. 2023: much closer to one training
image than to any other), judged against the model's *own* training digits, so that a digit it never saw cannot
veto a copy of one it did; the share of samples whose nearest of all 60,000 digits is one of its own n is
kept beside it, against chance n / 60,000. A model whose samples never reach the quality gate of the
`training` experiment is shown as below the gate, with the best share it reached, and is not part of the
fitted law; a second line over every run with an onset shows what those runs would add (`mnistmem.onset`).
The gate asks for two things, because the classifier alone is fooled: it labels 99% of uniform noise and
every sample of a plain white blob with at least 90% confidence (measured here). A sample must also be
*handwriting-like*: some training digit lies as close to it as to all but 1% of the test digits.

Randomness, sharpened (`seed_share_<n>`, on the smallest diffusion run): counting the seeds that bring back a
copied digit does not test the objection "sampling is random, so no particular work is reproduced", since any
image copied often enough comes back from several seeds by chance. So the stage draws many samples from the
final model and measures, for each of its training digits, the share of *all* seeds that reproduce it, with a
95% interval, against the share each would get if the copies were spread evenly over the n digits. A share that
is fixed and measurable is what "random" hides: whoever draws 1,000 samples gets a given digit back about 1,000
times that share, whatever the seeds.

Each run is one stage: it trains (resumably, checkpoints at every grid step kept in scratch), then measures
every grid checkpoint, keeping each measured row in scratch too, so a sitting stopped by its time budget
resumes where it stopped. What is committed is small: the rows, and two galleries per run (the first seeds at
every grid step; the most copy-like samples of the final model beside their training images).
"""

from __future__ import annotations

import json
import time

import numpy as np

from mnistmem.atomic import write_atomic
from mnistmem.experiments import scales
from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import draw, sampler_options, train_config
from mnistmem.experiments.training import RECOGNISED, TARGETS

FAMILIES = ("diffusion", "gan", "vae")
#: Samples `seed_share` draws from the smallest diffusion run's final model, by scale.
SEED_SHARE_SAMPLES = {"smoke": 64, "cpu": 10_000, "gpu": 50_000}
#: Its base seed (the `small` experiment draws the same samples again, to score them like the main models').
SEED_SHARE_SEED = 8
#: The copy definition the onset is read from (see the module docstring), and the headline kept beside it.
ONSET_CRITERION = "nn_ratio"
GALLERY_FILE = "gallery.npz"
PAIRS_FILE = "pairs.npz"
#: A grid run whose model a later stage samples keeps its final model here (EMA weights in half precision).
SAMPLER_DIR = "sampler"
#: The same-noise stage keeps this many pairs with their images.
PAIRS_KEPT = 12
#: Per run: the first this many seeds at every grid step, and this many most copy-like final samples.
GALLERY_SEEDS = 8
GALLERY_CLOSEST = 8


def _measure(
    ctx: StageContext, model, step: int, n_train: int, bar: float
) -> tuple[dict, np.ndarray, np.ndarray, object]:
    """One checkpoint: draw the samples, judge them against the run's own training digits (with the test digits'
    false-alarm rates under the same judging), find each one's nearest of all 60,000 digits, and let the
    classifier say how many it recognises."""
    from mnistmem import copies, data, quality
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.stages import score_against_own_training_set
    from mnistmem.models import classifier
    from mnistmem.neighbors import knn
    from mnistmem.onset import share_interval

    images, seeds = draw(model, ctx.config)
    test, _ = data.load_mnist("test")
    table, baseline = score_against_own_training_set(images, seeds, ctx.config["train"]["data"], test)
    train, _ = data.load_mnist("train")
    distance, index = knn(images, train, k=1, progress=False)
    nearest = index[:, 0]
    own = DataSpec.from_dict(ctx.config["train"]["data"]).indices()
    own_count = int(np.isin(nearest, own).sum())
    judge = classifier.load_pretrained()
    _, confidence = quality.classifier_confidence(images, judge)
    keep = ("count", "rate", "ci_low", "ci_high", "baseline_count", "baseline_rate", "baseline_ci_high")
    criteria = {row["criterion"]: {k: row[k] for k in keep} for row in copies.summarize(table, baseline)}
    share, low, high = share_interval(own_count, len(images))
    row = {
        "step": int(step),
        "passes": int(step) * int(ctx.config["train"]["batch_size"]) / n_train,
        "n_samples": len(images),
        "criteria": criteria,
        "own_nearest": {"count": own_count, "share": share, "ci_low": low, "ci_high": high},
        "recognised_share": float((confidence >= RECOGNISED).mean()),
        # the classifier is confident on noise too; a sample counts as handwriting-like when some training digit
        # lies as close to it as to all but 1% of the test digits (`handwriting_bar`)
        "handwriting_share": float((distance[:, 0] <= bar).mean()),
        # beside the gate, not in it: the FID of a few thousand samples is biased upwards (`training`)
        "fid": float(quality.mnist_fid(images, test, judge)),
        "median_nn_distance": float(np.median(table.nn_distance[:, 0])),
    }
    return row, images, seeds, table


def handwriting_bar(ctx: StageContext) -> float:
    """`quality.handwriting_bar` of the `calibration` experiment's baseline table (the 10,000 test digits against
    all 60,000 training digits)."""
    from mnistmem import quality

    return quality.handwriting_bar(ctx.upstream("calibration").table("baseline").nn_distance[:, 0])


def grid_stage(ctx: StageContext) -> dict:
    """Train one run and measure it at every grid step (see the module docstring)."""
    from mnistmem import checkpoints, copies, training
    from mnistmem.results import ResultError

    config = training.TrainConfig.from_dict(ctx.config["train"])
    run = ctx.scratch / "run"
    training.train(config, run, resume=True, progress=ctx.progress, deadline=ctx.deadline)
    kept = dict(checkpoints.list_checkpoints(run))
    grid = [int(step) for step in ctx.config["grid"]]
    missing = [step for step in grid if step not in kept]
    if missing:
        raise ResultError(
            f"{run}: no kept checkpoint at grid step(s) {missing} (kept: {sorted(kept)}); every grid step must be a "
            "multiple of the run's keep_every and checkpoint_every. Fix the onset section in scales"
        )
    built = config.data.build()
    n_train = len(built)
    bar = handwriting_bar(ctx)
    rows, first, rows_dir = [], [], ctx.scratch / "rows"
    rows_dir.mkdir(exist_ok=True)
    for step in grid:
        cached = rows_dir / f"{step:08d}.json"
        if cached.exists() and step != grid[-1]:  # the last step is measured again: its table makes the galleries
            measured = json.loads(cached.read_text())
            rows.append(measured["row"])
            first.append(np.asarray(measured["first"], dtype=np.uint8))
            continue
        row, images, seeds, table = _measure(ctx, checkpoints.load_model(kept[step]), step, n_train, bar)
        payload = {"row": row, "first": images[:GALLERY_SEEDS].tolist()}
        write_atomic(cached, lambda h, p=payload: h.write(json.dumps(p).encode()))
        rows.append(row)
        first.append(images[:GALLERY_SEEDS])
        if step != grid[-1] and ctx.deadline is not None and time.monotonic() > ctx.deadline:
            raise training.TrainingPaused(ctx.dir, step, grid[-1])  # the next sitting reads the rows measured
    if ctx.config.get("keep_sampler"):  # the same-noise stage draws from it, perhaps in a later sitting
        checkpoints.export_sampler(kept[grid[-1]], ctx.dir / SAMPLER_DIR, "float16")
    # the final model's most copy-like samples (smallest ratio score) beside their nearest own training digit
    scores = table.scores[ONSET_CRITERION]
    closest = np.argsort(scores, kind="stable")[:GALLERY_CLOSEST]
    partner = copies.nearest_under(table, ONSET_CRITERION)[closest]
    write_atomic(
        ctx.dir / GALLERY_FILE,
        lambda h: np.savez_compressed(
            h,
            steps=np.asarray(grid, dtype=np.int64),
            first_seeds=np.stack(first),
            closest=images[closest],
            closest_seeds=seeds[closest],
            closest_scores=scores[closest],
            partners=built.images[partner],
            partner_sources=built.sources[partner],
        ),
    )
    # which of its own digits the final model copies, and how often: against 1/n, the share each would get if
    # the copies were spread evenly over the n digits (the "randomness" objection, chapter 6)
    flagged = table.flags[ONSET_CRITERION]
    copied, times = np.unique(built.sources[copies.nearest_under(table, ONSET_CRITERION)[flagged]], return_counts=True)
    order = np.argsort(-times, kind="stable")[:10]
    return {
        "family": config.model,
        "n": n_train,
        "run": ctx.config.get("run", "a"),
        "data": ctx.config["train"]["data"],
        "final_copies": {
            "count": int(flagged.sum()),
            "distinct_images": len(copied),
            "most_copied": [{"source": int(copied[i]), "samples": int(times[i])} for i in order],
        },
        "batch_size": config.batch_size,
        "criterion": ONSET_CRITERION,
        "headline": copies.HEADLINE,
        "handwriting_bar": bar,
        "chance_own_nearest": n_train / 60_000,
        "curve": rows,
    }


def same_noise_stage(ctx: StageContext) -> dict:
    """Two diffusion models trained on disjoint halves of one set, sampled from the same noise (the same seeds):
    how far apart are the two samples of each seed, and how close is each to its own half and to the other's?
    Kadkhodaie et al. (ICLR 2024) find that with few training images each model reproduces images of its own
    half (so the two samples differ), while with many both produce nearly the same image from the same noise:
    a picture that shows where "it only copies" and where "it learned" holds."""
    from mnistmem import checkpoints, copies, data, quality
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.stages import score_against_own_training_set
    from mnistmem.models import classifier
    from mnistmem.neighbors import knn, pixel_distances

    test, _ = data.load_mnist("test")
    train, _ = data.load_mnist("train")
    judge = classifier.load_pretrained()
    bar = handwriting_bar(ctx)
    halves, samples = [], []
    for stage in ctx.config["runs"]:
        model = checkpoints.load_model(ctx.input(stage) / SAMPLER_DIR)
        images, seeds = draw(model, ctx.config)
        spec = ctx.summaries[stage]["data"]
        table, _ = score_against_own_training_set(images, seeds, spec, test)
        own = DataSpec.from_dict(spec).build().images
        halves.append((spec, own, table))
        samples.append(images)
    a, b = samples
    between = pixel_distances(a, b)
    per_half = []
    for k, (spec, _, table) in enumerate(halves):
        other = halves[1 - k][1]
        to_other = knn(samples[k], other, k=1, progress=False)[0][:, 0]
        per_half.append(
            {
                "data": spec,
                "median_to_own": float(np.median(table.nn_distance[:, 0])),
                "median_to_other_half": float(np.median(to_other)),
                "copies_of_own": int(table.flags[ONSET_CRITERION].sum()),
                "closer_to_own_share": float((table.nn_distance[:, 0] < to_other).mean()),
                "recognised_share": float((quality.classifier_confidence(samples[k], judge)[1] >= RECOGNISED).mean()),
                # the gate's second test (see `_measure`): the classifier alone is confident on noise too
                "handwriting_share": float((knn(samples[k], train, k=1, progress=False)[0][:, 0] <= bar).mean()),
            }
        )
    nearest = [halves[k][1][copies.nearest_under(halves[k][2], ONSET_CRITERION)[:PAIRS_KEPT]] for k in range(2)]
    write_atomic(
        ctx.dir / PAIRS_FILE,
        lambda h: np.savez_compressed(
            h,
            a=a[:PAIRS_KEPT],
            b=b[:PAIRS_KEPT],
            nearest_a=nearest[0],
            nearest_b=nearest[1],
            between=between[:PAIRS_KEPT],
        ),
    )
    return {
        "n": len(a),
        "half_size": len(halves[0][1]),
        "median_between": float(np.median(between)),
        "between_quartiles": [float(q) for q in np.quantile(between, [0.25, 0.75])],
        "halves": per_half,
    }


#: What `seed_share` keeps for the book: the most reproduced training digits, each with samples of different
#: seeds that reproduce it.
SEED_GALLERY_FILE = "seed_gallery.npz"
GALLERY_DIGITS, GALLERY_SAMPLES = 4, 8


def seed_share_stage(ctx: StageContext) -> dict:
    """The share of all seeds that reproduce each training digit of the run named in the config (see the module
    docstring), by the ratio test against the model's own digits, each with a Wilson 95% interval, beside the
    even share (the copy share / n); a chi-square test asks whether the copies are spread evenly."""
    from scipy.stats import chisquare

    from mnistmem import checkpoints, copies, data
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.stages import score_against_own_training_set
    from mnistmem.stats import wilson_interval

    run = ctx.config["run"]
    model = checkpoints.load_model(ctx.input(run) / SAMPLER_DIR)
    spec = ctx.summaries[run]["data"]
    images, seeds = draw(model, ctx.config, progress=ctx.progress)
    test, _ = data.load_mnist("test")
    table, baseline = score_against_own_training_set(images, seeds, spec, test)
    built = DataSpec.from_dict(spec).build()
    digits = len(built.images)
    flagged = np.asarray(table.flags[ONSET_CRITERION], dtype=bool)
    nearest = copies.nearest_under(table, ONSET_CRITERION)
    per_digit = np.bincount(nearest[flagged], minlength=digits)
    n, copied = len(images), int(flagged.sum())
    even = copied / n / digits
    rows = []
    for j in np.argsort(-per_digit, kind="stable"):
        low, high = wilson_interval(int(per_digit[j]), n)
        rows.append(
            {
                "row": int(j),
                "source": int(built.sources[j]),
                "seeds": int(per_digit[j]),
                "share": per_digit[j] / n,
                "ci_low": low,
                "ci_high": high,
            }
        )
    shown = [r["row"] for r in rows[:GALLERY_DIGITS]]
    kept = np.zeros((len(shown), GALLERY_SAMPLES, 28, 28), dtype=np.uint8)
    kept_seeds = np.full((len(shown), GALLERY_SAMPLES), -1, dtype=np.int64)
    for k, j in enumerate(shown):
        mine = np.flatnonzero(flagged & (nearest == j))[:GALLERY_SAMPLES]
        kept[k, : len(mine)], kept_seeds[k, : len(mine)] = images[mine], seeds[mine]
    write_atomic(
        ctx.dir / SEED_GALLERY_FILE,
        lambda h: np.savez_compressed(
            h, training=built.images[shown], samples=kept, seeds=kept_seeds, sources=built.sources[shown]
        ),
    )
    copy_low, copy_high = wilson_interval(copied, n)
    return {
        "run": run,
        "n": n,
        "training_digits": digits,
        "copies": copied,
        "copy_share": copied / n,
        "copy_ci": [copy_low, copy_high],
        "test_false_alarm_share": float(np.asarray(baseline.flags[ONSET_CRITERION], dtype=bool).mean()),
        "even_share": even,
        "digits_above_even": sum(r["ci_low"] > even for r in rows),
        "digits_below_even": sum(r["ci_high"] < even for r in rows),
        "digits_never": int((per_digit == 0).sum()),
        "uniform_p_value": float(chisquare(per_digit).pvalue) if copied else None,
        "digits": rows,
    }


def onset_stage(ctx: StageContext) -> dict:
    """Every run's onset and good-samples step, the line onset ≈ slope · n + intercept per family, and the
    shares at equal steps and at equal passes (`mnistmem.onset`)."""
    from mnistmem import onset

    families = {}
    for family in FAMILIES:
        runs = [s for s in ctx.summaries.values() if s.get("family") == family]
        if not runs:
            continue
        gate = TARGETS[family]["recognised_share"]
        onsets, names, batches, curves = [], [], [], {}
        for run in sorted(runs, key=lambda s: (s["n"], s["run"])):
            rows = [
                {
                    "step": r["step"],
                    "passes": r["passes"],
                    # copying beyond chance: the share's lower 95% bound above the test digits' upper bound
                    "low": r["criteria"][ONSET_CRITERION]["ci_low"],
                    "bar": r["criteria"][ONSET_CRITERION]["baseline_ci_high"],
                    # the quality gate: recognised by the classifier *and* handwriting-like (see `_measure`)
                    "recognised": onset.gate_share(r["recognised_share"], r["handwriting_share"]),
                }
                for r in run["curve"]
            ]
            bar = max(r["bar"] for r in rows)
            found = onset.onset(run["n"], rows, bar=bar, gate=gate, share="low")
            onsets.append(found)
            names.append(run["run"])
            batches.append(run["batch_size"])
            curves[run["n"], run["run"]] = rows
        passes = {}
        for (n, name), rows in curves.items():
            for r in rows:
                point = {"n": n, "run": name, "step": r["step"], "low": r["low"]}
                passes.setdefault(round(r["passes"], 6), []).append(point)
        families[family] = {
            "gate": gate,
            "onsets": [
                {
                    **o.as_dict(),
                    "run": name,
                    # how often each training digit had been seen when copying began (the equal-passes reading)
                    "passes_at_onset": None if o.step is None else o.step * batch / o.n,
                }
                for o, name, batch in zip(onsets, names, batches, strict=True)
            ],
            # the line over the runs that met the quality gate, and over every run with an onset (those below it
            # included): the book shows both, so a reader sees what the runs below the gate add
            "line": onset.fit_line(onsets),
            "line_all": onset.fit_line(onsets, gated=False),
            "equal_passes": {
                str(p): points for p, points in sorted(passes.items()) if len({q["n"] for q in points}) > 1
            },
        }
    return {"criterion": ONSET_CRITERION, "families": families}


def plan(scale: str) -> list[Stage]:
    settings = scales.config(scale, "onset")
    grid = settings["grid"]
    every = int(np.gcd.reduce(np.asarray(grid)))
    stages, grids = [], []
    for family in FAMILIES:
        for n in settings["sizes"].get(family, ()):
            halves = family == "diffusion" and n in settings["halves"]
            runs = ("a", "b") if halves else ("a",)
            for run in runs:
                # every run's digits are one half of a random set of 2n: the other half is the second run's,
                # where there is one, and otherwise a control the model never saw
                data = {"n": 2 * n, "seed": 0, "part": [runs.index(run), 2]}
                train = train_config(
                    scale,
                    family,
                    data=data,
                    section="onset_recipes",
                    steps=grid[-1],
                    keep_every=every,
                    checkpoint_every=every,
                )
                config = {
                    "train": train,
                    "grid": grid,
                    "n": settings["n_samples"],
                    "seed": 2,
                    "sampler": sampler_options(scale, family),
                    "run": run,
                    "keep_sampler": halves,
                }
                name = f"grid_{family}_{n}" + ("" if run == "a" else "_b")
                stages.append(Stage(name, config, grid_stage))
                grids.append(name)
            if halves:
                pair = (f"grid_{family}_{n}", f"grid_{family}_{n}_b")
                config = {
                    "runs": list(pair),
                    "n": settings["same_noise_samples"],
                    "seed": 3,
                    "sampler": sampler_options(scale, family),
                }
                stages.append(Stage(f"same_noise_{n}", config, same_noise_stage, after=pair))
    stages.append(Stage("onset", {"families": list(FAMILIES)}, onset_stage, after=tuple(grids)))
    # the smallest run whose final model is kept (`keep_sampler`: the runs trained in halves)
    n = min(settings["halves"])
    run = f"grid_diffusion_{n}"
    share = {
        "run": run,
        "n": SEED_SHARE_SAMPLES[scale],
        "seed": SEED_SHARE_SEED,
        "sampler": sampler_options(scale, "diffusion"),
    }
    stages.append(Stage(f"seed_share_{n}", share, seed_share_stage, after=(run,)))
    return stages


EXPERIMENT = Experiment(
    name="onset",
    question="When during training does copying begin, and does that moment grow with the training-set size?",
    plan=plan,
    requires=("calibration",),
)
