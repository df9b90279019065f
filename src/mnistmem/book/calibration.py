"""Chapter 2 (data and copies): MNIST's own digits, how far apart digits are, and how each
definition of a copy was calibrated against independent handwriting.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import numpy as np

from mnistmem import data
from mnistmem.book import figures
from mnistmem.book.common import CRITERION_NAMES, html_table, pct, scale_note, stage_table, training_digits
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.figures import threshold_text
from mnistmem.book.sentences import c_t_reading, c_t_text, copy_words


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


def pixel_distance_scale() -> None:
    """Glue how far a typical training digit lies from an all-black image (10th and 90th percentiles, whole
    numbers), to give pixel distances a scale."""
    flat = training_digits().reshape(-1, 28 * 28).astype(np.float64) / 255.0
    low, high = np.percentile(np.sqrt((flat * flat).sum(1)), [10, 90])
    glue("distance_blank_low", f"{low:.0f}")
    glue("distance_blank_high", f"{high:.0f}")


def calibration_table(ch) -> None:
    """Each definition's threshold (published or calibrated) and its false-alarm rate on the held-out half of
    the test digits, the half its threshold was not chosen on."""
    result = ch["calibration"]
    table = stage_table(result, "baseline")
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
    train = training_digits()
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
