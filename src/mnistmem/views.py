"""What the chapters show: figures, tables and glued numbers, each read from experiment results.

Every function takes the chapter's loaded results (`mnistmem.chapter.Chapter`), displays one figure or
table with a caption that states the scale and sample count, and glues the numbers the prose quotes.
Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go

from mnistmem import data, figures
from mnistmem.copies import HEADLINE, nearest_under
from mnistmem.display import glue, show, show_html
from mnistmem.figures import threshold_text

MODEL_NAMES = {"gan": "GAN", "vae": "VAE", "diffusion": "Diffusion"}
#: The same names inside a sentence ("47 of 5,000 diffusion-model samples").
MODEL_NOUNS = {"gan": "GAN", "vae": "VAE", "diffusion": "diffusion-model"}
#: ... and as the subject of a sentence ("the diffusion model reproduced ...").
MODEL_SUBJECTS = {"gan": "GAN", "vae": "VAE", "diffusion": "diffusion model"}
CRITERION_NAMES = {
    "l2": "pixel distance",
    "nn_ratio": "nearest-neighbour ratio",
    "calibrated_l2": "calibrated distance (Carlini)",
    "ssim": "structural similarity (SSIM)",
    "feature_cosine": "classifier-feature similarity",
    "copy_descriptor": "copy descriptor",
}
#: The headline definition, as prose ("... are copies by the calibrated distance (Carlini)").
HEADLINE_WORDS = CRITERION_NAMES[HEADLINE]
SLIDER_STOPS = 15
#: |C_T| below this reads as "about as close as fresh handwriting". C_T averages per-region Z-scores, each
#: standard normal when samples and fresh handwriting lie alike, so chance alone rarely takes it past 2.
C_T_NEAR_ZERO = 2.0


def model_name(tag: str) -> str:
    """'diffusion_100' -> 'Diffusion, 100 digits'."""
    family, _, n = tag.partition("_")
    return MODEL_NAMES.get(family, family) + (f", {int(n):,} digits" if n else "")


def device_text(result) -> str:
    """The device a result was computed on, as its manifest records it."""
    device = result.manifest.get("hardware", {}).get("device", "unknown hardware")
    return device.replace(" 1 threads)", " 1 thread)")  # manifests written before the grammar fix


def scale_note(result) -> str:
    """A short statement of the scale and hardware a result was computed at."""
    hardware = device_text(result)
    words = {
        "smoke": "smoke scale: tiny models trained for seconds, for testing only; the numbers mean nothing",
        "cpu": "cpu scale: small models trained briefly on 2 CPU cores",
        "gpu": "gpu scale: the paper scale, on one GPU",
    }
    return f"{words.get(result.scale, result.scale)}; computed on {hardware}"


@lru_cache(maxsize=1)
def _train_images() -> np.ndarray:
    return data.load_mnist("train")[0]


def _table(result, stage: str):
    return result.table(stage)


def _samples(result, stage: str) -> tuple[np.ndarray, np.ndarray]:
    return result.samples(stage)


#: Tables with at least this many columns become one card per row on a phone (each value under its heading).
STACK_COLUMNS = 5


def html_table(columns: list[str], rows: list[list], caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{html.escape(columns[i] if i < len(columns) else "")}">{html.escape(str(v))}</td>'
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    stack = " mnistmem-stack" if len(columns) >= STACK_COLUMNS else ""
    return (
        f'<table class="table mnistmem-table{stack}"><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def pct(rate: float, low: float | None = None, high: float | None = None) -> str:
    text = f"{100 * rate:.2f}%"
    if low is not None and high is not None:
        text += f" ({100 * low:.2f} to {100 * high:.2f})"
    return text


# ---------------------------------------------------------------------------------------------- chapter 2
def show_first_training_digits(count: int = 20) -> None:
    images, labels = data.load_mnist("train")
    hover = [f"training image #{i}, labelled {labels[i]}" for i in range(count)]
    show(
        figures.digit_grid(images[:count], hover, columns=5, scale=4),
        f"The first {count} of the 60,000 MNIST training images, in their original order.",
    )


def show_random_training_digits(seed: int = 1, count: int = 100) -> None:
    images, labels = data.load_mnist("train")
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))
    fig = figures.digit_grid(images[chosen], [f"training image #{i}, a {labels[i]}" for i in chosen], columns=20)
    show(fig, f"{count} training digits chosen at random (seed {seed}).")


def copy_words(info: dict) -> str:
    """How a criterion's threshold reads: "at most" / "below" for distances and ratios (a copy when the score
    is small), "at least" / "above" for similarities, by whether the threshold itself counts."""
    if info["direction"] == "below":
        return "at most" if info.get("inclusive", True) else "below"
    return "at least" if info.get("inclusive", True) else "above"


def pixel_distance_scale() -> None:
    """Glue how far a typical training digit lies from an all-black image (10th and 90th percentiles, whole
    numbers), to give pixel distances a scale."""
    flat = _train_images().reshape(-1, 28 * 28).astype(np.float64) / 255.0
    low, high = np.percentile(np.sqrt((flat * flat).sum(1)), [10, 90])
    glue("distance_blank_low", f"{low:.0f}")
    glue("distance_blank_high", f"{high:.0f}")


def calibration_table(ch) -> None:
    """Each definition's threshold (published or calibrated) and its false-alarm rate on the held-out half of
    the test digits, the half its threshold was not chosen on."""
    result = ch["calibration"]
    table = _table(result, "baseline")
    info = table.meta["criteria_info"]
    held_out = result.summary("baseline")["held_out"]
    rows = []
    for name in table.flags:
        fa = held_out[name]["false_alarms_report_half"]
        how = "published" if held_out[name]["chosen_by"] == "published" else "chosen on the other half"
        rows.append(
            [
                CRITERION_NAMES.get(name, name),
                f"{copy_words(info[name])} {threshold_text(table.thresholds[name])} ({how})",
                pct(fa["rate"], fa["ci_low"], fa["ci_high"]),
                info[name]["source"],
            ]
        )
    ct = table.meta.get("c_t", {}).get("c_t")
    if ct is not None:
        rows.append(
            [
                "data-copying test C_T (model level)",
                "well below 0",
                f"C_T = {c_t_text(ct)}: {c_t_reading(ct)}",
                "Meehan et al. 2020",
            ]
        )
    n_report = held_out[next(iter(held_out))]["false_alarms_report_half"]["n"]
    show_html(
        html_table(
            ["definition", "a copy when the score is", "held-out test digits that count as copies (95% CI)", "source"],
            rows,
            f"How often each definition calls independent handwriting a copy: {n_report:,} MNIST test digits (the "
            "odd-numbered half, not used to choose any threshold) checked against all 60,000 training digits "
            f"({scale_note(result)}). C_T: even-numbered test digits as the 'samples', odd-numbered as fresh "
            "handwriting.",
        )
    )


def near_duplicates_scatter(ch) -> None:
    from mnistmem.copies import CRITERIA

    result = ch["calibration"]
    dup = result.arrays("near_duplicates", "near_duplicates.npz")
    train = _train_images()
    test = data.load_mnist("test")[0]
    pairs_a, pairs_b = dup["closest_train_pairs"][:, 0], dup["closest_train_pairs"][:, 1]
    n = len(pairs_a)
    pairs = [(train[a], train[b]) for a, b in zip(pairs_a, pairs_b, strict=True)]
    pairs += [
        (test[t], train[j]) for t, j in zip(dup["closest_test_index"], dup["closest_test_train_index"], strict=True)
    ]
    distances = np.concatenate([dup["closest_train_pair_distance"], dup["closest_test_distance"]])
    groups = np.array([0] * n + [1] * len(dup["closest_test_index"]))
    hover = [
        f"training #{a} and training #{b}: distance {d:.2f}"
        for a, b, d in zip(pairs_a, pairs_b, dup["closest_train_pair_distance"], strict=True)
    ]
    hover += [
        f"test #{t} and training #{j}: distance {d:.2f}"
        for t, j, d in zip(
            dup["closest_test_index"], dup["closest_test_train_index"], dup["closest_test_distance"], strict=True
        )
    ]
    rank = np.concatenate([np.arange(1, n + 1), np.arange(1, len(groups) - n + 1)])
    fig, script = figures.hover_pair_scatter(
        rank,
        distances,
        pairs,
        hover,
        "rank (closest pair first)",
        "pixel distance",
        groups,
        {0: "training digit vs training digit", 1: "test digit vs training digit"},
    )
    threshold = CRITERIA["l2"].default_threshold
    fig.add_hline(y=threshold, line_dash="dash", annotation_text=f"copy threshold {threshold_text(threshold)}")
    show(
        fig,
        f"The closest pairs of real MNIST digits ({scale_note(result)}). Hover a point to see the pair.",
        post_script=script,
    )
    train_d, test_d = dup["train_nn_distance"], dup["test_nn_distance"]
    glue("calib_dupe_distance", threshold_text(threshold))
    glue("calib_train_dupes", int((train_d <= threshold).sum()))
    glue("calib_test_close", int((test_d <= threshold).sum()))


# ------------------------------------------------------------------------------------------ chapters 3-5
def _glue_model(ch, family: str) -> None:
    result = ch["main"]
    summary = result.summary(f"score_{family}")
    glue(f"{family}_samples", summary["n"])
    glue(f"{family}_fid", summary["fid"])
    glue(f"{family}_scale_note", scale_note(result))
    glue(f"{family}_parameters", _sampling_parameters(result, family))
    glue(f"{family}_confident", pct(summary["confident_share"]))
    reference = result.summary("reference")
    glue("real_fid", reference["fid"])
    glue("real_confident", pct(reference["confident_share"]))
    glue(f"{family}_verdict", verdict(result, family))
    if summary.get("c_t") is not None:
        glue(f"{family}_c_t", c_t_sentence(summary["c_t"]))
    if family == "diffusion":
        glue("diffusion_steps", sampling_steps(result, family))


def sampling_steps(result, tag: str) -> int:
    """How many denoising steps the diffusion model's sample stage took (its recorded sampler options, else
    the sampler's default)."""
    from mnistmem.models.diffusion import SAMPLERS

    options = result.stage(f"sample_{tag}")["config"].get("sampler", {})
    return int(options.get("steps") or SAMPLERS[options.get("sampler", "dpm")][1])


def c_t_text(c_t: float) -> str:
    """C_T with its sign and a true minus sign, one decimal (two below 1): "+14.3", "−3.2", "+0.05"."""
    return f"{c_t:+.{1 if abs(c_t) >= 1 else 2}f}".replace("-", "−")


def c_t_reading(c_t: float) -> str:
    """What a value of Meehan et al.'s C_T says, in a few words. Positive: samples lie farther from the training
    set than fresh handwriting (under-fitting); negative: closer (copying); near 0: like fresh handwriting."""
    if c_t <= -C_T_NEAR_ZERO:
        return "closer to the training digits than fresh handwriting (a sign of copying)"
    if c_t >= C_T_NEAR_ZERO:
        return "farther from the training digits than fresh handwriting (under-fitting, not copying)"
    return "about as close to the training digits as fresh handwriting"


def c_t_sentence(c_t: float) -> str:
    """One model's C_T for the prose of chapters 3-5, with what its sign means."""
    text = (
        "Meehan's data-copying test, the last row, judges the model as a whole: region by region, it asks whether "
        f"the samples lie closer to their nearest training digits than fresh handwriting does. Here C_T = "
        f"{c_t_text(c_t)}. "
    )
    if c_t >= C_T_NEAR_ZERO:
        return text + (
            "A positive value means the samples lie farther from the training digits than fresh handwriting does: "
            "the mark of a model that has not learnt to write as closely to its training data as real writers do "
            "(under-fitting), not of copying. Copying would show as a value well below 0."
        )
    if c_t <= -C_T_NEAR_ZERO:
        return text + (
            "A negative value means the samples lie closer to the training digits than fresh handwriting does: "
            "the sign of memorisation that the test was built to detect."
        )
    return text + (
        "A value near 0 means the samples lie about as close to the training digits as fresh handwriting does: "
        "the test sees neither copying nor under-fitting in the model as a whole."
    )


def verdict(result, tag: str) -> str:
    """One sentence: does any definition find more copies than among independent test digits, and how close
    does the closest sample come compared with the closest test digit?"""
    summary = result.summary(f"score_{tag}")
    table = _table(result, f"score_{tag}")
    baseline = _table(result.sibling("calibration"), "baseline")
    closest = float(table.nn_distance[:, 0].min())
    closest_test = float(baseline.nn_distance[:, 0].min())
    distances = (
        f"the closest sample lies at distance {closest:.2f} from its nearest training image, against "
        f"{closest_test:.2f} for the closest of the {len(baseline.nn_distance):,} test digits"
    )
    above = [r for r in summary["criteria"] if r["excess_ci_low"] > 0]
    if not above:
        top = max(summary["criteria"], key=lambda r: r["count"])
        if top["count"] == 0:
            return f"No definition counts a single one of these {summary['n']:,} samples as a copy; {distances}."
        return (
            f"No definition finds more copies among these {summary['n']:,} samples than among independent test "
            f"digits (the most any definition flags is {top['count']:,}, by the "
            f"{CRITERION_NAMES.get(top['criterion'], top['criterion'])}); {distances}."
        )
    parts = [
        f"{r['count']:,} by the {CRITERION_NAMES.get(r['criterion'], r['criterion'])} ({pct(r['rate'])}, test "
        f"digits {pct(r['baseline_rate'])})"
        for r in above
    ]
    return (
        f"More samples count as copies than independent test digits do under {len(above)} of "
        f"{len(summary['criteria'])} definitions: " + "; ".join(parts) + f". For scale, {distances}."
    )


def _sampling_parameters(result, family: str) -> int:
    """Parameters of the model's sampling network, from its recorded size options (no weights needed)."""
    from mnistmem.experiments.storage import weight_bits

    return weight_bits(result.stage(f"train_{family}"))[0]


def sample_gallery(ch, family: str, count: int = 36) -> None:
    """The first `count` samples, six to a row: about 110 px per digit in the book's column (4 times MNIST's
    28 px), so a reader can judge each one."""
    result = ch["main"]
    images, seeds = _samples(result, f"sample_{family}")
    table = _table(result, f"score_{family}")
    hover = [
        f"sample {i} (seed {seeds[i]}): looks like a {table.extra['label'][i]} "
        f"({100 * table.extra['confidence'][i]:.0f}% sure); nearest training image #{table.nn_index[i, 0]} "
        f"at distance {table.nn_distance[i, 0]:.2f}"
        for i in range(count)
    ]
    show(
        figures.digit_grid(images[:count], hover, columns=6, scale=4),
        f"The first {count} of {len(images):,} samples from the {MODEL_SUBJECTS[family]} ({scale_note(result)}).",
    )
    _glue_model(ch, family)


def round_stop(value: float, direction: str, significant: int = 2) -> float:
    """A slider stop at a round value: two significant digits of a distance (2.98 -> 3, 0.0123 -> 0.012), and
    of a similarity's distance below 1 (0.99974 -> 0.9997), so stops near 1 stay apart."""
    value = float(value)
    from_one = direction == "above" and value < 1
    gap = 1 - value if from_one else value
    if gap == 0 or not np.isfinite(gap):
        return value
    rounded = float(f"{gap:.{significant}g}")
    return 1 - rounded if from_one else rounded


def slider_stops(values: np.ndarray, default: float, direction: str) -> np.ndarray:
    """About SLIDER_STOPS stops spread over the scores (by quantile), each at a round value, plus the default."""
    quantiles = np.quantile(values, np.linspace(0, 1, SLIDER_STOPS))
    return np.unique(np.append([round_stop(q, direction) for q in quantiles], default))


def model_samples(result, tag: str) -> figures.ModelSamples:
    """A model's samples, nearest training images and criterion scores, for the copy explorer."""
    from mnistmem.copies import CRITERIA

    table = _table(result, f"score_{tag}")
    images, _ = _samples(result, f"sample_{tag}")
    baseline = _table(result.sibling("calibration"), "baseline")
    train = _train_images()
    criteria = []
    for name, scores in table.scores.items():
        if name not in baseline.scores:
            continue
        finite = np.concatenate([scores, baseline.scores[name]])
        finite = finite[np.isfinite(finite)]
        default = table.thresholds[name]
        stops = slider_stops(finite, default, CRITERIA[name].direction)
        criteria.append(
            figures.CriterionScores(
                CRITERION_NAMES.get(name, name), scores, baseline.scores[name], CRITERIA[name].direction, default, stops
            )
        )
    return figures.ModelSamples(model_name(tag), images, train[table.nn_index[:, 0]], table.nn_index[:, 0], criteria)


def copy_explorer(ch, families: list[str]) -> None:
    result = ch["main"]
    models = [model_samples(result, family) for family in families]
    show(
        figures.copy_explorer(models),
        f"Choose a model and a definition of a copy, then move the threshold ({scale_note(result)}; "
        f"{len(models[0].samples):,} samples per model, each compared with all 60,000 training images).",
    )
    closest_pairs(ch, families, count=6 if len(families) == 1 else 4)


def closest_pairs(ch, families: list[str], count: int = 6) -> None:
    """The samples closest to a training image by the headline definition, whatever the threshold, drawn large,
    each with its pixel distance and every definition's verdict at the book's default threshold."""
    from mnistmem.copies import CRITERIA, nearest_under

    result = ch["main"]
    train = _train_images()
    blocks = []
    for family in families:
        table = _table(result, f"score_{family}")
        images, seeds = _samples(result, f"sample_{family}")
        scores = table.scores[HEADLINE]
        order = np.argsort(scores if CRITERIA[HEADLINE].direction == "below" else -scores, kind="stable")
        order = order[np.isfinite(scores[order])][:count]
        # the training image the headline definition compares the sample with (its closest by the descriptor,
        # which need not be the closest by pixels): the image its verdict is about
        partners = nearest_under(table, HEADLINE)
        pairs = []
        for i in order:
            partner = int(partners[i])
            verdicts = [
                (
                    CRITERION_NAMES.get(name, name),
                    f"{threshold_text(table.scores[name][i])}; a copy if {CRITERIA[name].direction} "
                    f"{threshold_text(table.thresholds[name])}",
                    bool(table.flags[name][i]),
                )
                for name in table.scores
                if name in table.flags and name in CRITERIA
            ]
            title = f"{MODEL_NAMES[family]} sample {i} (seed {seeds[i]}) · training image #{partner}"
            pairs.append(figures.Pair(images[i], train[partner], title, verdicts))
        several = len(families) > 1
        heading = f"{MODEL_NAMES[family]}: its {len(pairs)} samples closest to a training image" if several else ""
        blocks.append(figures.pair_gallery_html(pairs, heading))
    show_html(
        "<figure class='mnistmem-figure mnistmem-pairs'>"
        + "".join(blocks)
        + "<figcaption class='mnistmem-caption'>"
        + html.escape(
            f"The samples closest to a training image by the {HEADLINE_WORDS}, shown whatever the threshold: "
            f"each is the sample, the training image the {HEADLINE_WORDS} finds closest to it, and their difference "
            "(black where they agree), with each definition's verdict at the book's threshold; the other "
            "definitions judge the sample against its own closest training image, which can be another one. "
            "'Counted' is not proof of a copy: at its threshold every definition also counts a small share of "
            "independent test digits (the table below gives it), and a model is judged by how far it exceeds "
            f"that share. Click a pair to enlarge it ({scale_note(result)})."
        )
        + "</figcaption></figure>"
    )


def criteria_table(ch, family: str) -> None:
    result = ch["main"]
    summary = result.summary(f"score_{family}")
    info = _table(result, f"score_{family}").meta["criteria_info"]
    rows = [
        [
            CRITERION_NAMES.get(r["criterion"], r["criterion"]),
            f"{copy_words(info.get(r['criterion'], r))} {threshold_text(r['threshold'])}",
            pct(r["rate"], r["ci_low"], r["ci_high"]),
            pct(r["baseline_rate"], r["baseline_ci_low"], r["baseline_ci_high"]),
            pct(r["excess"], r["excess_ci_low"], r["excess_ci_high"]),
        ]
        for r in summary["criteria"]
    ]
    if summary.get("c_t") is not None:
        c_t = summary["c_t"]
        rows.append(["data-copying test C_T", "well below 0", f"{c_t_text(c_t)}: {c_t_reading(c_t)}", "≈ 0", ""])
    show_html(
        html_table(
            [
                "definition",
                "threshold",
                "samples that are copies (95% CI)",
                "test digits (baseline)",
                "excess over baseline",
            ],
            rows,
            f"{MODEL_NAMES[family]}: copies among {summary['n']:,} samples under each definition "
            f"({scale_note(result)}).",
        )
    )


# ---------------------------------------------------------------------------------------------- chapter 6
def _scored_tags(result) -> list[str]:
    return [name.removeprefix("score_") for name in result.manifest["stages"] if name.startswith("score_")]


def most_copied(ch, top: int = 15) -> None:
    """The training images credited with the most copies, for every model of `main` and `size` that copies
    beyond chance (its flagged share's interval above independent handwriting's). A model trained on a subset
    is judged against its own training set, as everywhere in the book."""
    from mnistmem.dataspec import DataSpec
    from mnistmem.results import OWN_TABLE_FILE

    xs, ys, pairs, hover, groups, names, chance = [], [], [], [], [], {}, []
    for g, (experiment, tag) in enumerate((e, t) for e in ("main", "size") for t in _scored_tags(ch[e])):
        result = ch[experiment]
        summary = result.summary(f"score_{tag}")
        own = summary.get("against_own_training_set")
        row = next(r for r in (own or summary)["criteria"] if r["criterion"] == HEADLINE)
        if row["excess_ci_low"] <= 0:
            if row["count"]:
                chance.append(model_name(tag) if "_" in tag else f"{model_name(tag)}, 60,000 digits")
            continue
        if own:
            table = result.table(f"score_{tag}", OWN_TABLE_FILE)
            built = DataSpec.from_dict(result.stage(f"score_{tag}")["config"]["data"]).build()
            reference, numbers = built.images, built.sources
        else:
            table = _table(result, f"score_{tag}")
            reference, numbers = _train_images(), np.arange(len(_train_images()))
        images, _ = _samples(result, f"sample_{tag}")
        flagged = np.flatnonzero(table.flags[HEADLINE])
        nearest = nearest_under(table, HEADLINE)[flagged]
        index, times = np.unique(nearest, return_counts=True)
        order = np.argsort(-times, kind="stable")[:top]
        names[g] = model_name(tag)
        for rank, j in enumerate(order, start=1):
            example = flagged[nearest == index[j]][0]
            xs.append(rank)
            ys.append(int(times[j]))
            pairs.append((images[example], reference[index[j]]))
            hover.append(f"{model_name(tag)}: training image #{numbers[index[j]]} copied by {times[j]} samples")
            groups.append(g)
    if chance:
        glue(
            "most_copied_chance",
            f"Not shown, because the {HEADLINE_WORDS} flags their samples no more often than it flags independent "
            f"test digits (those flags are its false alarms, not evidence of copying): {'; '.join(chance)}.",
        )
    else:
        glue("most_copied_chance", "")
    if not xs:
        show_html(
            f"<p class='mnistmem-note'>No model produced more copies by the {HEADLINE_WORDS} than independent "
            f"handwriting does at this scale ({scale_note(ch['main'])}), so no training image is credited.</p>"
        )
        return
    fig, script = figures.hover_pair_scatter(
        np.array(xs),
        np.array(ys),
        pairs,
        hover,
        "rank among copied training images",
        "samples that copy it",
        np.array(groups),
        names,
    )
    show(
        fig,
        f"Training images most often copied ({HEADLINE_WORDS}), per model ({scale_note(ch['size'])}). "
        "Hover a point to see one copy beside the training image.",
        post_script=script,
    )


def size_points(ch) -> list[dict]:
    """One row per (family, training-set size), with n = 60,000 taken from the main experiment."""
    rows = []
    for experiment in ("size", "main"):
        result = ch[experiment]
        for tag in _scored_tags(result):
            family, _, n = tag.partition("_")
            if family not in ("gan", "diffusion"):
                continue
            summary = result.summary(f"score_{tag}")
            # a subset model is judged against its own training set (all 60,000 would let a twin it never saw
            # veto a copy of one it did); the full-data models against all 60,000
            own = summary.get("against_own_training_set")
            criteria = own["criteria"] if own else summary["criteria"]
            ratio = next(r for r in criteria if r["criterion"] == HEADLINE)
            rows.append(
                {
                    "family": family,
                    "n": int(n) if n else 60_000,
                    "tag": tag,
                    "experiment": experiment,
                    "own_share": summary["own_training_share"],
                    "ratio_rate": ratio["rate"],
                    "ratio_low": ratio["ci_low"],
                    "ratio_high": ratio["ci_high"],
                    "samples": summary["n"],
                    "confidence": summary["mean_confidence"],
                }
            )
    return sorted(rows, key=lambda r: (r["family"], r["n"]))


def smallest_sizes(ch) -> dict[str, dict]:
    """Per family, the `size_points` row of its smallest training set in the size experiment."""
    smallest: dict[str, dict] = {}
    for point in size_points(ch):
        if point["experiment"] == "size" and point["n"] < smallest.get(point["family"], {"n": float("inf")})["n"]:
            smallest[point["family"]] = point
    return smallest


def size_explorer(ch, per_state: int = 4) -> None:
    train = _train_images()
    states = []
    for row in size_points(ch):
        result = ch[row["experiment"]]
        table = _table(result, f"score_{row['tag']}")
        images, _ = _samples(result, f"sample_{row['tag']}")
        order = np.argsort(table.nn_distance[:, 0], kind="stable")[:per_state]
        strip = figures.pair_strip(images[order], train[table.nn_index[order, 0]])
        own = (
            ""
            if row["own_share"] is None
            else (
                f"<br>nearest training image among its own {row['n']:,}: {100 * row['own_share']:.1f}% "
                f"(chance {100 * row['n'] / 60_000:.2f}%)"
            )
        )
        text = (
            f"<b>{MODEL_NAMES[row['family']]} trained on {row['n']:,} digits</b>: copies "
            f"({HEADLINE_WORDS}, against its own training set) "
            f"{pct(row['ratio_rate'], row['ratio_low'], row['ratio_high'])}{own}"
        )
        label = f"{MODEL_NAMES[row['family']]}<br>{row['n']:,}"
        states.append((label, figures.png_data_uri(strip), text))
    show(
        figures.slider_gallery(states, "closest samples: sample | nearest training image | difference"),
        f"Move the slider through training-set sizes ({scale_note(ch['size'])}).",
    )


def size_curve(ch) -> None:
    rows = size_points(ch)
    fig = go.Figure()
    for k, family in enumerate(("gan", "diffusion")):
        mine = [r for r in rows if r["family"] == family]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[r["n"] for r in mine],
                y=[100 * r["ratio_rate"] for r in mine],
                name=f"{MODEL_NAMES[family]}: copies ({HEADLINE_WORDS})",
                mode="lines+markers",
                line={"color": figures.model_colour(family)},
                marker={"symbol": ["circle", "diamond"][k]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [100 * (r["ratio_high"] - r["ratio_rate"]) for r in mine],
                    "arrayminus": [100 * (r["ratio_rate"] - r["ratio_low"]) for r in mine],
                },
            )
        )
        own = [r for r in mine if r["own_share"] is not None]
        fig.add_trace(
            go.Scatter(
                x=[r["n"] for r in own],
                y=[100 * r["own_share"] for r in own],
                mode="lines+markers",
                name=f"{MODEL_NAMES[family]}: nearest image among its own n",
                line={"color": figures.model_colour(family), "dash": "dot"},
            )
        )
    # Chance only where the "own n" share is defined (a subset), so the line does not run to 100% at 60,000.
    sizes = sorted({r["n"] for r in rows if r["own_share"] is not None})
    fig.add_trace(
        go.Scatter(
            x=sizes,
            y=[100 * n / 60_000 for n in sizes],
            name="chance (n / 60,000)",
            mode="lines",
            line={"color": figures.PALETTE[0], "dash": "dash"},
        )
    )
    fig.update_layout(
        xaxis={"type": "log", "title": "training images (n)"},
        yaxis={"title": "% of samples"},
        height=420,
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.25},
    )
    show(fig, f"Copying against training-set size ({scale_note(ch['size'])}); bars are 95% confidence intervals.")
    smallest = min(rows, key=lambda r: (r["n"], r["family"]))
    glue(
        "size_sentence",
        f"At the smallest training set measured ({smallest['n']:,} digits, {MODEL_NAMES[smallest['family']]}), "
        f"{pct(smallest['ratio_rate'])} of samples are copies by the {HEADLINE_WORDS}"
        + (
            ""
            if smallest["own_share"] is None
            else f", and {pct(smallest['own_share'])} have their nearest of all 60,000 training digits among "
            f"the model's own {smallest['n']:,}, against {pct(smallest['n'] / 60_000)} by chance"
        )
        + ".",
    )


def training_curve(ch) -> None:
    """Copying against training step for the smallest training sets: when does it begin?"""
    result = ch["size"]
    curves = [name for name in result.manifest["stages"] if name.startswith("curve_")]
    fig = go.Figure()
    sentences = []
    for stage in curves:
        tag = stage.removeprefix("curve_")
        summary = result.summary(stage)
        points = summary["curve"]
        steps = [p["step"] for p in points]
        for key, label, dash in (
            ("nn_ratio_rate", "copies (ratio test)", "solid"),
            ("own_training_share", "nearest image among its own training digits", "dot"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=[100 * p[key] for p in points],
                    mode="lines+markers",
                    name=f"{model_name(tag)}: {label}",
                    line={"color": figures.model_colour(tag), "dash": dash},
                )
            )
        first = next((p["step"] for p in points if p["nn_ratio_rate"] > 0), None)
        last = points[-1]
        sentences.append(
            f"For the {MODEL_SUBJECTS[tag.partition('_')[0]]} trained on {int(tag.partition('_')[2]):,} digits, "
            + (
                "no checkpoint's samples passed the ratio test"
                if first is None
                else f"the first samples passing the ratio test appear at step {first:,}"
            )
            + f"; at its last checkpoint (step {last['step']:,}) {pct(last['own_training_share'])} of samples "
            f"have their nearest training image among its own digits (chance: {pct(summary['chance'])})."
        )
    fig.update_layout(
        xaxis={"title": "training step"},
        yaxis={"title": "% of samples", "rangemode": "tozero"},
        height=420,
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.25},
    )
    show(
        fig,
        f"Copying over the course of training, from samples of saved checkpoints ({scale_note(result)}; "
        f"{result.stage(curves[0])['config']['n']:,} samples per checkpoint).",
    )
    glue("curve_sentence", " ".join(sentences))


def duplication_chart(ch) -> None:
    """Two panels per model: the share of samples that reproduce each canary, and how close the closest
    sample came (with the copy threshold), against how often the canary was planted."""
    from plotly.subplots import make_subplots

    result = ch["duplication"]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("samples that<br>reproduce the canary", "closest sample<br>to the canary"),
        horizontal_spacing=0.12,
    )
    threshold = None
    for k, family in enumerate(("diffusion", "gan")):
        stage = f"reproduction_{family}"
        if stage not in result.manifest["stages"]:
            continue
        summary = result.summary(stage)
        threshold = summary["threshold"]
        rows = summary["canaries"]
        text = [
            f"{MODEL_NAMES[family]}, {r['glyph']} planted ×{r['count']}: {r['reproduced']} of {r['n']:,} samples "
            f"are copies of it ({HEADLINE_WORDS}), {r.get('nearest_is_canary', 0):,} are closer to it than to any "
            f"digit; closest pixel distance {r['closest_distance']:.2f}"
            for r in rows
        ]
        style = {"color": figures.model_colour(family)}
        counts = [r["count"] for r in rows]
        for col, values in ((1, [100 * r["share"] for r in rows]), (2, [r["closest_distance"] for r in rows])):
            fig.add_trace(
                go.Scatter(
                    x=counts,
                    y=values,
                    mode="lines+markers",
                    name=MODEL_NAMES[family],
                    legendgroup=family,
                    showlegend=col == 1,
                    text=text,
                    hovertemplate="%{text}<extra></extra>",
                    line=style,
                    marker={"symbol": ["circle", "diamond"][k], "size": 9},
                ),
                row=1,
                col=col,
            )
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line={"dash": "dash", "color": figures.PALETTE[0]},
            annotation_text=f"copy threshold ({threshold})",
            row=1,
            col=2,
        )
    fig.update_xaxes(type="log", title="copies of the canary in the training set")
    fig.update_yaxes(title="% of samples", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title="distance (0 = identical)", row=1, col=2, rangemode="tozero")
    fig.update_layout(height=420, plot_bgcolor="white", legend={"orientation": "h", "y": -0.3})
    show(fig, f"Reproduction of planted canaries against their duplication ({scale_note(result)}).")
    digits = result.stage("train_diffusion")["config"]["train"]["data"]["n"] or 60_000
    glue("duplication_digits", f"{digits:,}")
    rows = {f: result.summary(f"reproduction_{f}")["canaries"] for f in ("diffusion", "gan")}
    most = {f: max(r, key=lambda row: row["count"]) for f, r in rows.items()}
    glue(
        "duplication_sentence",
        " ".join(
            f"The canary planted {m['count']:,} times comes back in {m['reproduced']:,} of {m['n']:,} "
            f"{MODEL_NOUNS[f]} samples ({pct(m['share'])}, by the {HEADLINE_WORDS}); "
            f"{m.get('nearest_is_canary', 0):,} samples are closer to it than to any digit, and the closest comes "
            f"within pixel distance {m['closest_distance']:.2f}."
            for f, m in most.items()
        ),
    )


def canary_gallery(ch, family: str = "diffusion", closest: int = 7) -> None:
    """Each planted canary beside the samples that came closest to it (hover: the distances)."""
    from mnistmem.results import CANARY_FILE

    result = ch["duplication"]
    summary = result.summary(f"reproduction_{family}")
    with np.load(result.path(f"reproduction_{family}", CANARY_FILE), allow_pickle=False) as archive:
        canaries, distance = archive["canaries"], archive["distance"]
    images, seeds = _samples(result, f"sample_{family}")
    tiles, hover = [], []
    for k, row in enumerate(summary["canaries"]):
        order = np.argsort(distance[:, k], kind="stable")[:closest]
        tiles += [canaries[k], *images[order]]
        hover += [f"the {row['glyph']} glyph, planted {row['count']:,} times"] + [
            f"sample {i} (seed {seeds[i]}): distance {distance[i, k]:.2f} to the {row['glyph']} glyph"
            + (" (a copy)" if distance[i, k] <= summary["threshold"] else "")
            for i in order
        ]
    planted = ", ".join(f"{row['count']:,}" for row in summary["canaries"])
    show(
        figures.digit_grid(np.stack(tiles), hover, columns=closest + 1, scale=3),
        f"Each row: a planted glyph (left; planted {planted} times, top to bottom) and the "
        f"{closest} of {len(images):,} {MODEL_NOUNS[family]} samples closest to it ({scale_note(result)}).",
    )


def cpu_words(cpu: dict) -> str:
    """A processor as a reader would say it: "an Intel Xeon processor with AMX matrix units"."""
    model = " ".join(cpu["model"].replace("(R)", "").replace("(TM)", "").replace("Processor", "").split())
    units = {
        "amx": "with AVX-512 and AMX matrix units",
        "avx512": "with AVX-512 vector units",
        "avx2": "with AVX2 vector units only",
    }.get(cpu["kind"].rsplit("-", 1)[-1], "")
    article = "an" if model[:1].lower() in "aeiou" else "a"
    return f"{article} {model} processor {units}".strip()


def regeneration_sentence(result) -> str:
    """What regenerating the main models' samples from their seeds on another machine showed (the
    randomness experiment's `regeneration` stage): bit-exact only on the CPU kind that drew them."""
    from mnistmem.copies import CRITERIA

    if "regeneration" not in result.manifest["stages"]:
        return ""
    summary = result.summary("regeneration")
    cpu = summary["regenerated_on"]
    checked = [m for m in summary["models"] if "n" in m]
    if not checked:
        return ""
    counts = " and ".join(
        f"{m['identical']:,} of {m['n']:,} {MODEL_NOUNS.get(m['model'], m['model'])} samples" for m in checked
    )
    drawn = {m["drawn_on"]["kind"]: m["drawn_on"] for m in checked if m["drawn_on"]}
    where = " and ".join(cpu_words(c) for c in drawn.values())
    if not drawn:
        where = "a machine whose processor the record of that run does not name"
    elif any(m["drawn_on"] is None for m in checked):
        where += " (and, for some, a machine the records do not name)"
    differing = sum(m["n"] - m["identical"] for m in checked)
    grey, distance = max(m["max_grey_levels"] for m in checked), max(m["max_distance"] for m in checked)
    text = (
        "A stored seed regenerates its sample bit for bit on the kind of processor that drew it. These samples "
        f"were drawn on {where}; regenerated from their stored seeds on {cpu_words(cpu)}, {counts} came out "
        "identical, bit for bit"
    )
    if differing:
        text += (
            f", and the other {differing:,} differ by at most {grey} grey levels of 255 in a "
            f"few pixels (a pixel distance of at most {distance:.3f}, where the book's pixel threshold for a copy "
            f"is {threshold_text(CRITERIA['l2'].default_threshold)}): the same image, not a different one"
        )
    return text + "."


def seeds_per_copy(ch) -> None:
    result = ch["randomness"]
    models = [m for m in result.summary("seeds")["models"] if m["copies"]]
    fig = go.Figure()
    for m in models:
        seeds = m["seeds_per_copied_image"]["seeds"]
        fig.add_trace(
            go.Bar(
                x=list(range(1, len(seeds) + 1)),
                y=seeds,
                name=model_name(m["model"]),
                marker_color=figures.model_colour(m["model"]),
            )
        )
    fig.update_layout(
        xaxis={"title": "copied training images, most reproduced first"},
        yaxis={"title": "distinct seeds that reproduce it"},
        height=400,
        plot_bgcolor="white",
        barmode="group",
    )
    show(fig, f"How many different random seeds lead to the same copied training image ({scale_note(result)}).")
    regenerated = [r for m in models for r in m["regenerated"]]
    several = sum(m["reproduced_by_several_seeds"] for m in models)
    if not models:
        glue(
            "randomness_sentence",
            f"At this scale no sample was a copy by the {HEADLINE_WORDS}, so there was no copy to trace.",
        )
        return
    glue(
        "randomness_sentence",
        f"Across the models, {several} copied training images were reproduced from two or more different seeds. "
        f"Of {len(regenerated)} copies regenerated from their stored seed alone on the machine that drew them, "
        f"{sum(r['identical'] for r in regenerated)} came out identical, bit for bit. " + regeneration_sentence(result),
    )


#: Numbers of generated samples the measured copy rate is multiplied up to (the last: LAION-2B's size).
SCALE_UP_SAMPLES = (60_000, 1_000_000, 2_300_000_000)


def scale_up_table(ch) -> None:
    """The share of samples that are copies *beyond* the false-alarm rate on independent handwriting (the
    excess, with its 95% interval, floored at 0), multiplied up to larger numbers of samples."""
    result = ch["main"]
    rows, rates = [], {}
    for tag in _scored_tags(result):
        summary = result.summary(f"score_{tag}")
        rate = rates[tag] = excess_share(next(r for r in summary["criteria"] if r["criterion"] == HEADLINE))
        low, high = rate["ci_low"], rate["ci_high"]
        for samples in SCALE_UP_SAMPLES:
            rows.append(
                [
                    model_name(tag),
                    f"{samples:,}",
                    pct(rate["rate"], low, high),
                    f"{rate['rate'] * samples:,.0f} ({low * samples:,.0f}–{high * samples:,.0f})",
                ]
            )
    show_html(
        html_table(
            [
                "model",
                "samples generated",
                f"share of samples that are copies by the {HEADLINE_WORDS}, beyond its false-alarm rate (95% CI)",
                "copies beyond chance among that many samples at that share (95% CI)",
            ],
            rows,
            "The measured share of copies beyond chance multiplied by larger numbers of samples "
            f"({scale_note(result)}); an illustration of arithmetic, not a prediction.",
        )
    )
    glue("scale_up_note", scale_up_note(rates))


def excess_share(row: dict) -> dict:
    """A criterion's summary row as the share of copies beyond its baseline: the excess and its Newcombe
    interval, floored at 0 (a model cannot copy less than not at all); `count` is the flagged samples beyond the
    baseline's expectation, rounded, and `n` the samples checked."""
    rate = max(0.0, row["excess"])
    return {
        "rate": rate,
        "ci_low": max(0.0, row["excess_ci_low"]),
        "ci_high": max(0.0, row["excess_ci_high"]),
        "count": round(rate * row["n"]),
        "n": row["n"],
    }


def scale_up_note(rates: dict[str, dict]) -> str:
    """What the scale-up table can and cannot say, from the records it multiplies up (per model: `count`
    copies beyond chance among `n` samples, the 95% interval's `ci_high`)."""
    none = [tag for tag, r in rates.items() if r["count"] == 0]
    text = (
        "The numbers in brackets are not counts of anything observed: they multiply up the 95% confidence "
        "interval of the share, whose upper end is the largest share of copies that the samples checked here "
        "cannot rule out. So the right-hand number in each bracket is an upper bound (at 95% confidence), not a "
        "count. The share is what remains after subtracting how often the same definition calls independent "
        "handwriting a copy, so chance matches are not multiplied up as copies. "
    )
    if none and len(none) == len(rates):
        n = min(rates[tag]["n"] for tag in none)
        text += (
            f"Here no model produced more copies by the {HEADLINE_WORDS} than independent handwriting does, so "
            f"every middle number is 0, and the most the table can say is that {n:,} samples leave room for a "
            f"share of up to {pct(max(rates[tag]['ci_high'] for tag in none))}. "
        )
    elif none:
        names = " and ".join(MODEL_SUBJECTS.get(tag, model_name(tag)) for tag in none)
        text += (
            f"The {names} produced no more copies by the {HEADLINE_WORDS} than independent handwriting does: for "
            f"{'them' if len(none) > 1 else 'it'} the table gives only that bound. "
        )
    return text + (
        "Nor are copies the same as works reproduced: the table counts samples, and several samples can copy the "
        "same training image (the section above counts the different seeds that return the same one), so the number "
        "of distinct works reproduced can be much smaller than the number of copies."
    )


# ---------------------------------------------------------------------------------------------- chapter 7
def storage_table(ch) -> None:
    result = ch["storage"]
    rows = [
        [
            model_name(m["model"]),
            f"{m['parameters']:,}",
            f"{m['weight_bits'] / 8e6:.1f} MB",
            f"{m['copied_training_images']:,}",
            f"{m['reproduced_bits'] / 8e3:.1f} kB",
            f"{100 * m['reproduced_share_of_weight_bits']:.3f}%",
        ]
        for m in result.summary("storage")["models"]
    ]
    show_html(
        html_table(
            [
                "model",
                "parameters",
                "size of weights",
                "training images reproduced",
                "their size (PNG)",
                "as share of the weights",
            ],
            rows,
            f"Bits in the weights against bits reproduced ({scale_note(result)}).",
        )
    )


def extraction_chart(ch) -> None:
    result = ch["storage"]
    models = result.summary("storage")["models"]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=[model_name(m["model"]) for m in models],
            y=[m["clusters"] for m in models],
            name="clusters of near-identical samples",
            marker_color=figures.PALETTE[4],
        )
    )
    fig.add_trace(
        go.Bar(
            x=[model_name(m["model"]) for m in models],
            y=[m["clusters_matching_training_images"] for m in models],
            name="... that are real training images",
            marker_color=figures.PALETTE[1],
        )
    )
    fig.update_layout(barmode="group", height=400, plot_bgcolor="white", yaxis={"title": "clusters"})
    show(fig, f"Generate-and-filter extraction without the training data ({scale_note(result)}).")
    glue("extraction_sentence", extraction_sentence(models, result.stage("storage")["config"]))


def extraction_sentence(models: list[dict], config: dict) -> str:
    """What the generate-and-filter search found (the storage stage's per-model records and its config):
    how many clusters, and how many of them are real training images, judged by each cluster's medoid."""
    found = sum(m["clusters"] for m in models)
    real = sum(m["clusters_matching_training_images"] for m in models)
    size = config.get("min_cluster", 3)
    if not found:
        return (
            f"Across all models, no {size:,} or more samples were near-identical to each other, so the search found "
            "no cluster to check against the training set."
        )
    text = (
        f"Across all models, the samples formed {found:,} {'cluster' if found == 1 else 'clusters'} of {size:,} or "
        "more near-identical images. Checking the most central sample of each (the one closest, in total, to the "
        f"others) against the training set, {real:,} of {found:,} turned out to be "
        + ("a real training image" if found == 1 else "real training images")
    )
    matched = [
        (m, i)
        for m in models
        for i, distance in enumerate(m.get("cluster_medoid_distance", []))
        if distance <= config.get("radius", float("inf"))
    ]
    if matched:
        m, i = min(matched, key=lambda pair: pair[0]["cluster_medoid_distance"][pair[1]])
        family, _, n = m["model"].partition("_")
        trained = f"trained on {int(n):,} digits" if n else "trained on all 60,000 digits"
        text += (
            f"{'; in the closest match, ' if len(matched) > 1 else ': '}{m['cluster_sizes'][i]:,} samples of the "
            f"{MODEL_SUBJECTS.get(family, family)} {trained} gather around training image "
            f"#{m['cluster_training_index'][i]}, and their central sample lies {m['cluster_medoid_distance'][i]:.2f} "
            "from it"
        )
    return text + "."


# ---------------------------------------------------------------------------------------------- chapter 10, appendix
def objections_summary(ch) -> None:
    result = ch["main"]
    rows = []
    for tag in _scored_tags(result):
        summary = result.summary(f"score_{tag}")
        for r in summary["criteria"]:
            rows.append(
                [
                    model_name(tag),
                    CRITERION_NAMES.get(r["criterion"], r["criterion"]),
                    pct(r["rate"], r["ci_low"], r["ci_high"]),
                    pct(r["baseline_rate"]),
                    pct(r["excess"], r["excess_ci_low"], r["excess_ci_high"]),
                ]
            )
    show_html(
        html_table(
            ["model", "definition", "copies", "baseline", "excess"],
            rows,
            f"All models trained on 60,000 digits, all definitions ({scale_note(result)}).",
        )
    )


def scales_used(ch) -> None:
    rows = [
        [
            name,
            result.scale,
            device_text(result),
            f"{result.wall_seconds / 60:.1f} min",
            (result.manifest.get("code", {}).get("commit") or "?")[:10],
        ]
        for name, result in ch.results.items()
    ]
    show_html(
        html_table(
            ["experiment", "scale", "hardware", "compute time", "code commit"],
            rows,
            "The scale, hardware and compute time behind each experiment shown in this book.",
        )
    )


def manifest_table(ch) -> None:
    rows = []
    for name, result in ch.results.items():
        for stage, record in result.manifest["stages"].items():
            rows.append([name, result.scale, stage, f"{record['wall_seconds']:.1f} s", record["finished"]])
    show_html(
        html_table(
            ["experiment", "scale", "stage", "wall time", "finished"],
            rows,
            "Every stage behind the book, from the manifests in data/results.",
        )
    )
    scales_used(ch)


# ---------------------------------------------------------------------------------------------- chapter 1
def findings(ch) -> None:
    """The book's main measurements in one table, each row pointing to the chapter that shows it."""
    main = ch["main"]
    rows = []
    baseline = None
    for family in ("gan", "vae", "diffusion"):
        summary = main.summary(f"score_{family}")
        by = {r["criterion"]: r for r in summary["criteria"]}
        baseline = by[HEADLINE]["baseline_rate"]
        rows.append(
            [
                f"{MODEL_NAMES[family]} trained on all 60,000 digits",
                f"{by[HEADLINE]['count']:,} of {summary['n']:,} samples are copies by the "
                f"{CRITERION_NAMES[HEADLINE]}; "
                f"{by['l2']['count']:,} lie within the pixel-distance threshold",
                f"chapter {3 + ('gan', 'vae', 'diffusion').index(family)}",
            ]
        )
    for _, point in sorted(smallest_sizes(ch).items()):
        rows.append(
            [
                f"{MODEL_NAMES[point['family']]} trained on {point['n']:,} digits",
                f"{pct(point['ratio_rate'])} of {point['samples']:,} samples are copies by the {HEADLINE_WORDS}",
                "chapter 6",
            ]
        )
    duplication = ch["duplication"]
    for family in ("diffusion", "gan"):
        top = max(duplication.summary(f"reproduction_{family}")["canaries"], key=lambda r: r["count"])
        rows.append(
            [
                f"{MODEL_NAMES[family]}, a glyph planted {top['count']:,} times",
                f"{top['reproduced']:,} of {top['n']:,} samples are copies of it by the {HEADLINE_WORDS}, "
                f"judged against the model's own training set (closest pixel distance {top['closest_distance']:.2f})",
                "chapter 6",
            ]
        )
    shares = [main.summary(f"score_{family}")["confident_share"] for family in ("gan", "vae", "diffusion")]
    glue(
        "findings_caveat",
        f"All of this is at the {main.scale} scale. The digit classifier recognises {pct(min(shares))} to "
        f"{pct(max(shares))} of the main models' samples as a digit with at least 90% confidence, against "
        f"{pct(main.summary('reference')['confident_share'])} of real training digits: these are small models "
        "trained briefly, and better-trained models may behave differently.",
    )
    show_html(
        html_table(
            ["what was measured", "result", "where"],
            rows,
            f"The main measurements ({scale_note(main)}). The {HEADLINE_WORDS} calls {pct(baseline)} of "
            "independent test digits copies; chapter 2 shows what it and the other definitions miss.",
        )
    )


# ---------------------------------------------------------------------------------------------- chapter 10
def c_t_summary(c_t: dict[str, float]) -> str:
    """One sentence on the main models' C_T values (`{family: C_T}`), each with what its sign means."""
    if not c_t:
        return ""
    parts = [f"C_T = {c_t_text(v)} for the {MODEL_SUBJECTS.get(f, f)}" for f, v in c_t.items()]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    readings = {c_t_reading(v) for v in c_t.values()}
    if len(readings) == 1:
        each = "its" if len(parts) == 1 else "in each case the"
        return f"Meehan's data-copying test, which judges a model as a whole, gives {listed}: {each} samples lie " + (
            f"{readings.pop()}."
        )
    return (
        "Meehan's data-copying test, which judges a model as a whole, gives "
        + "; ".join(f"{part} (its samples lie {c_t_reading(v)})" for part, v in zip(parts, c_t.values(), strict=True))
        + "."
    )


def overall_answer(full_data_clean: bool, small_n: int | None, fewest_copies: int | None) -> str:
    """The book's answer to its question at this scale, from three measured facts: whether the models trained on
    all 60,000 digits stayed at the level of independent handwriting (`full_data_clean`), the smallest training
    set on which the diffusion model emitted copies of its own digits (`small_n`, None if none), and the fewest
    planted copies of a glyph that a model reproduced (`fewest_copies`, None if none)."""
    full = (
        "The models trained on all 60,000 digits emitted no more copies than independent handwriting, so for them "
        "these measurements show no stored copy. "
        if full_data_clean
        else "Even the models trained on all 60,000 digits emitted more copies than independent handwriting. "
    )
    where = []
    if small_n is not None:
        where.append(f"on only {small_n:,} digits")
    if fewest_copies is not None:
        where.append(f"on data in which one image appears {fewest_copies:,} times")
    if not where:
        return full + "No smaller or duplicated training set made a model emit copies at this scale either."
    return (
        full
        + "The same kinds of model trained "
        + " or ".join(where)
        + " emitted particular training images on demand, from seeds that can be stored and replayed: for those "
        "models, what is needed to produce those images is in their weights. Whether a model stores copies is "
        "therefore a property of a particular model and its training data, measurable one model at a time."
    )


def unlearning_conclusion(result) -> str:
    """Chapter 8 in two sentences: how often the planted sign came back before and after each method, and after
    brief relearning; which methods removed it, which only hid it, which left it."""
    from mnistmem.unlearning_facts import METHOD_NAMES, before_forgetting, method_rows

    before = before_forgetting(result)["canary"]
    rows = {r["method"]: r for r in method_rows(result) if r["target"] == "canary"}
    parts, removed, hidden, left = [], [], [], []
    for method in ("retrain", "sisa", "finetune", "neggrad"):
        row = rows.get(method)
        if row is None:
            continue
        share, again = row["forgotten"]["share"], (row["relearned"] or {}).get("share")
        text = f"{METHOD_NAMES[method]} {pct(share)}"
        if again is not None:
            text += f" ({pct(again)} after brief relearning)"
        parts.append(text)
        (left if share > 0 else hidden if again else removed).append(METHOD_NAMES[method])
    verdict = []
    if removed:
        verdict.append("removed by " + " and ".join(removed))
    if hidden:
        verdict.append("hidden, and brought back by relearning, by " + " and ".join(hidden))
    if left:
        verdict.append("still emitted after " + " and ".join(left))
    return (
        f"Before forgetting, the small model emitted the planted sign in {pct(before['share'])} of its samples; "
        "afterwards: " + "; ".join(parts) + ". At this scale the sign was " + "; ".join(verdict) + "."
    )


def conclusions(ch) -> None:
    """Glue one sentence per objection, each computed from the results the earlier chapters show."""
    main = ch["main"]
    beyond, c_t = [], {}
    for family in ("gan", "vae", "diffusion"):
        summary = main.summary(f"score_{family}")
        criteria = summary["criteria"]
        above = [r for r in criteria if r["excess_ci_low"] > 0]
        if above:
            beyond.append(f"the {MODEL_SUBJECTS[family]} under {len(above)} of {len(criteria)} definitions")
        if summary.get("c_t") is not None:
            c_t[family] = summary["c_t"]
    glue("concl_definitions", f"{len(criteria) + bool(c_t)}")
    glue("concl_c_t", c_t_summary(c_t))
    glue(
        "concl_main",
        "Trained on all 60,000 digits, "
        + (
            "none of the three models produced more copies than independent handwriting does, under any of the "
            "definitions."
            if not beyond
            else "more samples counted as copies than independent test digits do for " + "; ".join(beyond) + "."
        ),
    )
    smallest = smallest_sizes(ch)
    glue(
        "concl_size",
        " ".join(
            f"Trained on only {p['n']:,} digits, the {MODEL_SUBJECTS[f]}'s samples were copies by the {HEADLINE_WORDS} "
            f"{pct(p['ratio_rate'])} of the time"
            + (
                ""
                if p["own_share"] is None
                else f", and {pct(p['own_share'])} had their nearest training image among those {p['n']:,} "
                f"(chance: {pct(p['n'] / 60_000)})"
            )
            + "."
            for f, p in sorted(smallest.items())
        ),
    )
    contrast = ""
    diffusion_main = main.summary("score_diffusion")["criteria"]
    small = smallest.get("diffusion")
    if small is not None:
        main_copies = any(r["excess_ci_low"] > 0 for r in diffusion_main)
        small_copies = small["ratio_low"] > next(
            r["baseline_rate"] for r in diffusion_main if r["criterion"] == HEADLINE
        )
        if small_copies and not main_copies:
            contrast = (
                f"The same diffusion architecture emitted no copies when trained on 60,000 digits and did when trained "
                f"on {small['n']:,}: whether a model emits copies is a property of a particular model and its "
                'training, not of "generative models" as such.'
            )
        elif small_copies and main_copies:
            contrast = "The diffusion model emitted copies both when trained on 60,000 digits and on fewer."
        else:
            contrast = (
                f"Even trained on {small['n']:,} digits, the diffusion model's copies did not rise clearly above what "
                "independent handwriting reaches at this scale."
            )
    glue("concl_contrast", contrast)
    duplication = ch["duplication"]
    parts = []
    for family in ("diffusion", "gan"):
        rows = duplication.summary(f"reproduction_{family}")["canaries"]
        parts.append(
            f"the {MODEL_SUBJECTS[family]} reproduced "
            + ", ".join(f"the glyph planted {r['count']:,}× in {pct(r['share'])}" for r in rows)
            + " of its samples"
        )
    glue("concl_duplication", "With the planted glyphs, " + "; ".join(parts) + ".")
    if "storage" in ch.results:
        storage = ch["storage"]
        glue(
            "concl_storage",
            extraction_sentence(storage.summary("storage")["models"], storage.stage("storage")["config"]),
        )
    if "unlearning" in ch.results:
        glue("concl_unlearning", unlearning_conclusion(ch["unlearning"]))
    small_copies = small is not None and small["ratio_low"] > next(
        r["baseline_rate"] for r in diffusion_main if r["criterion"] == HEADLINE
    )
    planted = [
        r["count"]
        for family in ("diffusion", "gan")
        for r in duplication.summary(f"reproduction_{family}")["canaries"]
        if r["share"] > 0
    ]
    glue("concl_overall", overall_answer(not beyond, small["n"] if small_copies else None, min(planted, default=None)))
    models = [m for m in ch["randomness"].summary("seeds")["models"] if m["copies"]]
    regenerated = [r for m in models for r in m["regenerated"]]
    glue(
        "concl_randomness",
        f"No sample was a copy by the {HEADLINE_WORDS}, so there was no copy to trace to its seeds."
        if not models
        else f"{sum(m['reproduced_by_several_seeds'] for m in models):,} copied training images came back from two "
        f"or more different seeds, and {sum(r['identical'] for r in regenerated)} of {len(regenerated)} copies "
        "regenerated from their stored seed alone on the machine that drew them came out identical, bit for bit. "
        + regeneration_sentence(ch["randomness"]),
    )
