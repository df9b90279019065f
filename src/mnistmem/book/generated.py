"""Chapters 3-5 (the GAN, the VAE, the diffusion model): sample galleries, the copy explorer, the
closest pairs and the table of every definition's count, with the verdict each chapter states.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html

import numpy as np

from mnistmem.book import figures
from mnistmem.book.common import (
    CRITERION_NAMES,
    HEADLINE_WORDS,
    MODEL_NAMES,
    MODEL_SUBJECTS,
    html_table,
    model_name,
    pct,
    scale_note,
    slider_stops,
    stage_samples,
    stage_table,
    training_digits,
)
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.figures import threshold_text
from mnistmem.book.sentences import c_t_reading, c_t_sentence, c_t_text, copy_words, verdict_sentence
from mnistmem.copies import HEADLINE, nearest_under


def _glue_model(ch, family: str) -> None:
    result = ch["main"]
    summary = result.summary(f"score_{family}")
    glue(f"{family}_samples", summary["n"])
    glue(f"{family}_fid", summary["fid"])
    glue(f"{family}_scale_note", scale_note(result))
    glue(f"{family}_parameters", result.sampler_size(f"model_{family}")[0])
    glue(f"{family}_confident", pct(summary["confident_share"]))
    reference = result.summary("reference")
    glue("real_fid", reference["fid"])
    glue("real_confident", pct(reference["confident_share"]))
    glue(f"{family}_verdict", verdict(result, family))
    glue(f"{family}_handwriting", handwriting_sentence(result, family))
    if summary.get("c_t") is not None:
        glue(f"{family}_c_t", c_t_sentence(summary["c_t"]))
    if family == "diffusion":
        glue("diffusion_steps", result.sampler_steps(f"sample_{family}"))


def handwriting_sentence(result, family: str) -> str:
    """The second quality test, which the classifier's confidence cannot stand in for (it is high on noise too):
    the share of samples that some training digit lies as close to as real handwriting does
    (`quality.handwriting_like`)."""
    from mnistmem.quality import HANDWRITING_QUANTILE, handwriting_like

    table = stage_table(result, f"score_{family}")
    baseline = stage_table(result.sibling("calibration"), "baseline")
    share = float(handwriting_like(table.nn_distance[:, 0], baseline.nn_distance[:, 0]).mean())
    return (
        f"That classifier is confident about pure noise too, so a second test asks whether a sample lies as close "
        f"to some training digit as {100 * HANDWRITING_QUANTILE:.0f}% of real test digits do: "
        f"{pct(share)} of the {MODEL_SUBJECTS[family]}'s samples pass it."
    )


def verdict(result, tag: str) -> str:
    """One sentence: does any definition find more copies than among independent test digits, and how close
    does the closest sample come compared with the closest test digit? (The rule: `sentences.verdict_sentence`.)"""
    table = stage_table(result, f"score_{tag}")
    baseline = stage_table(result.sibling("calibration"), "baseline")
    return verdict_sentence(
        result.summary(f"score_{tag}"),
        closest=float(table.nn_distance[:, 0].min()),
        closest_test=float(baseline.nn_distance[:, 0].min()),
        test_digits=len(baseline.nn_distance),
    )


def sample_gallery(ch, family: str, count: int = 36) -> None:
    """The first `count` samples, six to a row: about 110 px per digit in the book's column (4 times MNIST's
    28 px), so a reader can judge each one."""
    result = ch["main"]
    images, seeds = stage_samples(result, f"sample_{family}")
    table = stage_table(result, f"score_{family}")
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


def model_samples(result, tag: str) -> figures.ModelSamples:
    """A model's samples, nearest training images and criterion scores, for the copy explorer."""
    from mnistmem.copies import CRITERIA

    table = stage_table(result, f"score_{tag}")
    images, _ = stage_samples(result, f"sample_{tag}")
    baseline = stage_table(result.sibling("calibration"), "baseline")
    train = training_digits()
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
    from mnistmem.copies import CRITERIA

    result = ch["main"]
    train = training_digits()
    blocks = []
    for family in families:
        table = stage_table(result, f"score_{family}")
        images, seeds = stage_samples(result, f"sample_{family}")
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
    info = stage_table(result, f"score_{family}").meta["criteria_info"]
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
