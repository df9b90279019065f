"""Chapter 6 (across the training set): the training images copied most often, duplicated images, randomness and
what the counts would mean at a larger scale (when copying begins, against training time and size: `book.onset`).

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import (
    HEADLINE_WORDS,
    MODEL_NAMES,
    MODEL_NOUNS,
    html_table,
    model_name,
    pct,
    scale_note,
    stage_samples,
    stage_table,
    training_digits,
)
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.sentences import excess_share, regeneration_sentence, scale_up_note
from mnistmem.copies import HEADLINE, nearest_under


def scored_tags(result) -> list[str]:
    return [name.removeprefix("score_") for name in result.manifest["stages"] if name.startswith("score_")]


def most_copied(ch, top: int = 15) -> None:
    """The training images credited with the most copies, for every model of `main` and `size` that copies
    beyond chance (its flagged share's interval above independent handwriting's). A model trained on a subset
    is judged against its own training set, as everywhere in the book."""
    from mnistmem.dataspec import DataSpec
    from mnistmem.results import OWN_TABLE_FILE

    xs, ys, pairs, hover, groups, names, chance = [], [], [], [], [], {}, []
    for g, (experiment, tag) in enumerate((e, t) for e in ("main", "size") for t in scored_tags(ch[e])):
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
        f"Training images most often copied ({HEADLINE_WORDS}), per model ({scale_note(ch['size'])}). "
        "Hover a point to see one copy beside the training image.",
        post_script=script,
    )


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
    images, seeds = stage_samples(result, f"sample_{family}")
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
