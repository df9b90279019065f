"""A million samples per model: the `census` experiment read for the book. Its counts under every definition
with the most each rate can be at 95% confidence, the samples any definition flags beside the training image
they are judged against, the training images nearest to the most samples, and how the samples split by digit.

Why a separate census: 10,000 samples can only show that copies are rarer than about 0.04%; a million
(Carlini et al. 2023 drew about 2^20 per model) bound them below about 0.0004%, and show whether a few training
images attract many samples (Merger & Goldt 2026 find sparse regions memorised first).

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import (
    CRITERION_NAMES,
    HEADLINE_WORDS,
    MODEL_NAMES,
    html_table,
    pct,
    scale_note,
    training_digits,
)
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.figures import threshold_text
from mnistmem.book.sentences import bound_pct, census_sentence, per_digit_sentence, strict_flags_sentence
from mnistmem.copies import CRITERIA, HEADLINE
from mnistmem.experiments.census import FLAGGED_FILE
from mnistmem.stats import wilson_interval

FAMILIES = ("gan", "vae", "diffusion")


def census_families(result) -> list[str]:
    """The families with a finished census, in the book's order."""
    return [family for family in FAMILIES if f"census_{family}" in result.manifest["stages"]]


def _by_criterion(summary: dict) -> dict[str, dict]:
    return {row["criterion"]: row for row in summary["criteria"]}


def _sampler_words(result, family: str) -> str:
    if family != "diffusion":
        return ""
    return f", {result.sampler_steps(f'census_{family}')} denoising steps each"


def census_table(ch) -> None:
    """One row per model: samples drawn, copies by the headline definition and by the pixel-distance threshold
    (each with the most its rate can be at 95%), samples any definition flags, and the headline definition's
    false-alarm rate on independent test digits. Glues `census_<family>` (`sentences.census_sentence`) and
    `census_n_<family>`; with `main` loaded, also `census_main_n` and `census_main_bound` (the most a copy rate
    can be at 95% when none of the main chapters' samples is a copy: what a census is needed to go beyond)."""
    result = ch["census"]
    rows = []
    for family in census_families(result):
        summary = result.summary(f"census_{family}")
        by = _by_criterion(summary)
        head, l2 = by[HEADLINE], by["l2"]
        rows.append(
            [
                MODEL_NAMES[family],
                f"{summary['n']:,}{_sampler_words(result, family)}",
                f"{head['count']:,} (at most {bound_pct(head['rate_upper_95'])})",
                f"{l2['count']:,} (at most {bound_pct(l2['rate_upper_95'])})",
                f"{summary['flagged_by_any']:,}",
                pct(head["baseline_rate"]),
            ]
        )
        glue(f"census_{family}", census_sentence(family, summary))
        glue(f"census_n_{family}", summary["n"])
    if "main" in ch.results:
        main_n = ch["main"].summary("score_gan")["n"]
        glue("census_main_n", f"{main_n:,}")
        glue("census_main_bound", bound_pct(wilson_interval(0, main_n)[1]))
    show_html(
        html_table(
            [
                "model",
                "samples searched",
                f"copies by the {HEADLINE_WORDS} (95% bound)",
                "within the pixel-distance threshold (95% bound)",
                "flagged by any definition",
                f"test digits the {HEADLINE_WORDS} calls copies",
            ],
            rows,
            "Every sample compared with all 60,000 training digits; a bound is the largest copy rate consistent "
            f"with the count at 95% confidence ({scale_note(result)}).",
        )
    )


def flagged_pairs(ch, family: str, count: int = 6) -> None:
    """The census samples the headline definition scores closest to a training image among those any definition
    flagged, each beside that training image with every definition's verdict; or a plain line when none was."""
    result = ch["census"]
    summary = result.summary(f"census_{family}")
    if summary["flagged_stored"] == 0:
        show_html(
            f"<p class='mnistmem-note'>No definition flagged any of the {summary['n']:,} "
            f"{html.escape(MODEL_NAMES[family])} samples, so there is no pair to show.</p>"
        )
        return
    flagged = result.arrays(f"census_{family}", FLAGGED_FILE)
    names = [str(c) for c in flagged["criteria"]]
    scores = flagged["scores"]
    head = names.index(HEADLINE)
    order = np.argsort(scores[:, head] if CRITERIA[HEADLINE].direction == "below" else -scores[:, head])[:count]
    thresholds = {row["criterion"]: row["threshold"] for row in summary["criteria"]}
    train = training_digits()
    pairs = []
    for i in order:
        verdicts = [
            (
                CRITERION_NAMES.get(name, name),
                f"{threshold_text(scores[i, k])}; a copy if {CRITERIA[name].direction} "
                f"{threshold_text(thresholds[name])}",
                bool(flagged["flags"][i] >> k & 1),
            )
            for k, name in enumerate(names)
            if name in CRITERIA
        ]
        partner = int(flagged["headline_partner"][i])
        title = (
            f"{MODEL_NAMES[family]} census sample {int(flagged['sample'][i]):,} (seed {int(flagged['seeds'][i])}) "
            f"· training image #{partner}"
        )
        pairs.append(figures.Pair(flagged["images"][i], train[partner], title, verdicts))
    show_html(
        "<figure class='mnistmem-figure mnistmem-pairs'>"
        + figures.pair_gallery_html(pairs)
        + "<figcaption class='mnistmem-caption'>"
        + html.escape(
            f"Of the {summary['flagged_by_any']:,} {MODEL_NAMES[family]} census samples that some definition "
            f"flags, the {len(pairs)} the {HEADLINE_WORDS} scores closest to a training image: the sample, that "
            "training image and their difference, with every definition's verdict. Each regenerates from its "
            f"seed. Click a pair to enlarge it ({scale_note(result)})."
        )
        + "</figcaption></figure>"
    )


def strict_flags(ch, family: str) -> dict:
    """What the definitions other than the headline one and the ratio test flag in one model's census, read off
    its stored flagged samples: how many each flags, how many any of them flags, the digit of their nearest
    training images, and how many of them also pass the ratio test. Glues `census_strict_<family>`
    (`sentences.strict_flags_sentence`) and returns the numbers."""
    from mnistmem import data

    result = ch["census"]
    summary = result.summary(f"census_{family}")
    by = _by_criterion(summary)
    others = [name for name in by if name not in (HEADLINE, "nn_ratio")]
    numbers = {
        "counts": {name: by[name]["count"] for name in others},
        "union": 0,
        "digits": {},
        "ratio_passed": 0,
        "stored": summary["flagged_stored"],
        "flagged": summary["flagged_by_any"],
    }
    if summary["flagged_stored"]:
        flagged = result.arrays(f"census_{family}", FLAGGED_FILE)
        names = [str(c) for c in flagged["criteria"]]
        bits = flagged["flags"].astype(np.int64)
        hit = np.zeros(len(bits), dtype=bool)
        for name in others:
            hit |= (bits >> names.index(name) & 1).astype(bool)
        ratio = (bits >> names.index("nn_ratio") & 1).astype(bool)
        _, labels = data.load_mnist("train")
        digits = np.bincount(labels[flagged["nearest"][hit]], minlength=10)
        numbers.update(
            union=int(hit.sum()),
            digits={d: int(n) for d, n in enumerate(digits)},
            ratio_passed=int((hit & ratio).sum()),
        )
    glue(f"census_strict_{family}", strict_flags_sentence(family, numbers))
    return numbers


def most_often_nearest(ch, family: str, count: int = 10) -> None:
    """The training digits nearest to the most census samples, each with how many samples it is nearest to,
    against the number an even spread over the 60,000 would give."""
    result = ch["census"]
    summary = result.summary(f"census_{family}")
    census = summary["census"]
    top = [row for row in census["most_often_nearest"] if row["samples"] > 0][:count]
    if not top:
        return
    train = training_digits()
    expected = census["expected_per_image"]
    hover = [f"training image #{row['index']}: nearest to {row['samples']:,} samples" for row in top]
    # five to a row: ten in one row are drawn about 15 px wide on a phone, too small to tell a digit
    fig = figures.digit_grid(train[[row["index"] for row in top]], hover, columns=min(5, len(top)), scale=4)
    show(
        fig,
        f"The {len(top)} training digits nearest to the most of the {summary['n']:,} {MODEL_NAMES[family]} census "
        f"samples (from {top[0]['samples']:,} samples down to {top[-1]['samples']:,}; an even spread would give "
        f"{expected:.1f} each). Being nearest is not being copied: the table above counts copies. "
        f"Hover a digit for its count ({scale_note(result)}).",
    )
    glue(
        f"census_spread_{family}",
        f"{census['training_images_nearest_to_some_sample']:,} of the 60,000 training digits are the nearest "
        f"training image of at least one sample",
    )


def per_digit_chart(ch) -> None:
    """For each model, the share of its census samples whose nearest training image is each digit, beside the
    share of the training set each digit makes up; hover gives the headline definition's copies per digit.
    Glues `census_digits` (`sentences.per_digit_sentence`)."""
    from mnistmem import data

    result = ch["census"]
    _, labels = data.load_mnist("train")
    training_share = np.bincount(labels, minlength=10) / len(labels)
    digits = [str(d) for d in range(10)]
    fig = go.Figure(
        go.Bar(
            x=digits,
            y=100 * training_share,
            name="training digits",
            marker={"color": "#bbbbbb"},
            hovertemplate="digit %{x}: %{y:.1f}% of the training digits<extra></extra>",
        )
    )
    families = census_families(result)
    shares = {}
    for family in families:
        summary = result.summary(f"census_{family}")
        rows = sorted(summary["per_digit"], key=lambda r: r["digit"])
        n = summary["n"]
        shares[family] = [r["samples"] / n for r in rows]
        fig.add_trace(
            go.Bar(
                x=digits,
                y=[100 * r["samples"] / n for r in rows],
                name=MODEL_NAMES[family],
                marker={"color": figures.model_colour(family)},
                text=[f"{r['headline_copies']:,}" for r in rows],
                hovertemplate="digit %{x}: %{y:.1f}% of the samples; copies by the "
                + HEADLINE_WORDS
                + ": %{text}<extra>"
                + MODEL_NAMES[family]
                + "</extra>",
                textposition="none",
            )
        )
    fig.update_layout(
        barmode="group",
        height=380,
        plot_bgcolor="white",
        xaxis={"title": "digit of the nearest training image"},
        yaxis={"title": "share (%)", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
    )
    glue("census_digits", per_digit_sentence(shares, list(training_share)))
    show(
        figures.wrap_figure_text(fig),
        "Which digits the census samples resemble: the share of each model's samples whose nearest training image "
        "is a 0, a 1, …, beside each digit's share of the training set (grey). Hover a bar for the copies the "
        f"{HEADLINE_WORDS} counts among that digit's samples ({scale_note(result)}).",
    )
