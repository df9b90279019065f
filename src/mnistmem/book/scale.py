"""Chapter 6 (across the training set): the training images copied most often, randomness and
what the counts would mean at a larger scale (when copying begins: `book.onset`; duplication: `book.dose`).

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import numpy as np

from mnistmem.book import figures
from mnistmem.book.common import (
    HEADLINE_WORDS,
    html_table,
    model_name,
    pct,
    scale_note,
    stage_samples,
    stage_table,
    training_digits,
)
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.sentences import excess_share, regenerated_copies_sentence, scale_up_note
from mnistmem.copies import HEADLINE, nearest_under


def scored_tags(result) -> list[str]:
    return [name.removeprefix("score_") for name in result.manifest["stages"] if name.startswith("score_")]


def most_copied(ch, top: int = 15) -> None:
    """The training images credited with the most copies, for every model of `main` and `small` that copies
    beyond chance (its flagged share's interval above independent handwriting's). A model trained on a subset
    is judged against its own training set, as everywhere in the book."""
    from mnistmem.dataspec import DataSpec
    from mnistmem.results import OWN_TABLE_FILE

    xs, ys, pairs, hover, groups, names, chance = [], [], [], [], [], {}, []
    for g, (experiment, tag) in enumerate((e, t) for e in ("main", "small") for t in scored_tags(ch[e])):
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
            table = stage_table(result, f"score_{tag}")
            reference, numbers = training_digits(), np.arange(len(training_digits()))
        images, _ = stage_samples(result, f"sample_{tag}")
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
        f"Training images most often copied ({HEADLINE_WORDS}), per model ({scale_note(ch['small'])}). "
        "Hover a point to see one copy beside the training image.",
        post_script=script,
    )


def regeneration(ch) -> None:
    """Glue `randomness_sentence`: how many copies came back bit for bit from their stored seed alone on the
    machine that drew them, and what regenerating the main models' samples on this machine showed."""
    glue("randomness_sentence", regenerated_copies_sentence(ch["randomness"]))


#: Numbers of generated samples the measured copy rate is multiplied up to (the last: LAION-2B's size).
SCALE_UP_SAMPLES = (60_000, 1_000_000, 2_300_000_000)


def scale_up_table(ch) -> None:
    """The share of samples that are copies *beyond* the false-alarm rate on independent handwriting (the
    excess, with its 95% interval, floored at 0), multiplied up to larger numbers of samples."""
    result = ch["main"]
    rows, rates = [], {}
    for tag in scored_tags(result):
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
