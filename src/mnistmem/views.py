"""What the chapters show: figures, tables and glued numbers, each read from experiment results.

Every function takes the chapter's loaded results (`mnistmem.chapter.Chapter`), displays one figure or
table with a caption that states the scale and sample count, and glues the numbers the prose quotes.
Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html
from functools import lru_cache

import numpy as np

from mnistmem import data, figures
from mnistmem.display import glue, show, show_html
from mnistmem.experiments.stages import SAMPLES_FILE, TABLE_FILE, load_samples

MODEL_NAMES = {"gan": "GAN", "vae": "VAE", "diffusion": "Diffusion"}
CRITERION_NAMES = {
    "l2": "pixel distance",
    "nn_ratio": "nearest-neighbour ratio",
    "calibrated_l2": "calibrated distance (Carlini)",
    "ssim": "structural similarity (SSIM)",
    "feature_cosine": "classifier-feature similarity",
}
SLIDER_STOPS = 15


def model_name(tag: str) -> str:
    """'diffusion_100' -> 'Diffusion, 100 digits'."""
    family, _, n = tag.partition("_")
    return MODEL_NAMES.get(family, family) + (f", {int(n):,} digits" if n else "")


def scale_note(result) -> str:
    """A short statement of the scale and hardware a result was computed at."""
    hardware = result.manifest.get("hardware", {}).get("device", "unknown hardware")
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
    from mnistmem import tables

    return tables.load_table(result.path(stage, TABLE_FILE))


def _samples(result, stage: str) -> tuple[np.ndarray, np.ndarray]:
    return load_samples(result.path(stage, SAMPLES_FILE))


def html_table(columns: list[str], rows: list[list], caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'<table class="table mnistmem-table"><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def pct(rate: float, low: float | None = None, high: float | None = None) -> str:
    text = f"{100 * rate:.2f}%"
    if low is not None and high is not None:
        text += f" ({100 * low:.2f}–{100 * high:.2f})"
    return text


# ---------------------------------------------------------------------------------------------- chapter 2
def show_random_training_digits(seed: int = 1, count: int = 100) -> None:
    images, labels = data.load_mnist("train")
    chosen = np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))
    fig = figures.digit_grid(images[chosen], [f"training image #{i}, a {labels[i]}" for i in chosen], columns=20)
    show(fig, f"{count} training digits chosen at random (seed {seed}).")


def calibration_table(ch) -> None:
    result = ch["calibration"]
    table = _table(result, "baseline")
    info = table.meta["criteria_info"]
    rows = []
    for name, flags in table.flags.items():
        from mnistmem.stats import wilson_interval

        low, high = wilson_interval(int(flags.sum()), len(flags))
        word = "at most" if info[name]["direction"] == "below" else "at least"
        rows.append(
            [
                CRITERION_NAMES.get(name, name),
                f"{word} {table.thresholds[name]:.3g}",
                pct(flags.mean(), low, high),
                info[name]["source"],
            ]
        )
    ct = table.meta.get("c_t", {}).get("c_t")
    if ct is not None:
        rows.append(
            ["data-copying test C_T (model level)", "strongly negative", f"C_T = {ct:.2f}", "Meehan et al. 2020"]
        )
    show_html(
        html_table(
            ["definition", "a copy when the score is", "test digits that count as copies (95% CI)", "source"],
            rows,
            f"How often each definition calls independent handwriting a copy: {len(table):,} MNIST test "
            f"digits checked against all 60,000 training digits ({scale_note(result)}).",
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
    fig.add_hline(y=threshold, line_dash="dash", annotation_text=f"copy threshold {threshold:.2f}")
    show(
        fig,
        f"The closest pairs of real MNIST digits ({scale_note(result)}). Hover a point to see the pair.",
        post_script=script,
    )
    train_d, test_d = dup["train_nn_distance"], dup["test_nn_distance"]
    glue("calib_dupe_distance", threshold)
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


def _sampling_parameters(result, family: str) -> int:
    from mnistmem.experiments.stages import MODEL_DIR
    from mnistmem.experiments.storage import weight_bits

    return weight_bits(result.path(f"train_{family}", MODEL_DIR))[0]


def sample_gallery(ch, family: str, count: int = 40) -> None:
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
        figures.digit_grid(images[:count], hover, columns=20),
        f"The first {count} of {len(images):,} samples from the {MODEL_NAMES[family]} ({scale_note(result)}).",
    )
    _glue_model(ch, family)


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
        stops = np.unique(np.append(np.quantile(finite, np.linspace(0, 1, SLIDER_STOPS)), default))
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


def criteria_table(ch, family: str) -> None:
    result = ch["main"]
    summary = result.summary(f"score_{family}")
    rows = [
        [
            CRITERION_NAMES.get(r["criterion"], r["criterion"]),
            f"{r['threshold']:.3g}",
            pct(r["rate"], r["ci_low"], r["ci_high"]),
            pct(r["baseline_rate"], r["baseline_ci_low"], r["baseline_ci_high"]),
            pct(r["excess"], r["excess_ci_low"], r["excess_ci_high"]),
        ]
        for r in summary["criteria"]
    ]
    if summary.get("c_t") is not None:
        rows.append(["data-copying test C_T", "≪ 0 means copying", f"{summary['c_t']:.2f}", "≈ 0", ""])
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
