"""How duplication drives copying: the `dose` experiment read for the book. The share of samples reproducing a
canary against how often it was planted (pooled over the canaries of each count and the runs, each canary's
own share beside it), and every canary beside the samples that came closest to it.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import CRITERION_NAMES, MODEL_NAMES, MODEL_SUBJECTS, scale_note
from mnistmem.book.display import glue, show
from mnistmem.book.sentences import dose_sentence
from mnistmem.experiments.dose import CLOSEST_FILE

#: The definitions the chart offers, the first shown: the ratio test and the pixel distance (both calibrated in
#: chapter 2, and the two the duplicate-aware judging matters for), then the headline definition.
CHART_CRITERIA = ("nn_ratio", "l2", "copy_descriptor")


def dose_chart(ch) -> None:
    """Reproduction share against the number of planted copies, one line per family (pooled over canaries and
    runs, 95% intervals), each canary's own share as a dot; a menu switches the definition. Glues `dose_sentence`
    and `dose_share_<count>` (a canary's share of the training rows at that count)."""
    result = ch["dose"]
    families = result.summary("dose")["families"]
    fig = go.Figure()
    visible = []
    for c, criterion in enumerate(CHART_CRITERIA):
        for family, curve in families.items():
            points = curve["points"]
            colour = figures.model_colour(family)
            rows = [p["by_criterion"][criterion] for p in points]
            counts = [p["count"] for p in points]
            fig.add_trace(
                go.Scatter(
                    x=counts,
                    y=[100 * r["share"] for r in rows],
                    mode="lines+markers",
                    name=f"{MODEL_NAMES[family]} ({len(curve['runs'])} run{'s' if len(curve['runs']) > 1 else ''})",
                    line={"color": colour},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [100 * (r["ci_high"] - r["share"]) for r in rows],
                        "arrayminus": [100 * (r["share"] - r["ci_low"]) for r in rows],
                        "thickness": 1,
                    },
                    hovertemplate="planted %{x:,} times: %{y:.2f}% of samples reproduce it<extra>"
                    + MODEL_NAMES[family]
                    + "</extra>",
                    visible=c == 0,
                )
            )
            visible.append(c)
            spread = [(p["count"], q) for p, r in zip(points, rows, strict=True) for q in r["per_canary"]]
            fig.add_trace(
                go.Scatter(
                    x=[count for count, _ in spread],
                    y=[100 * q["share"] for _, q in spread],
                    mode="markers",
                    name=f"{MODEL_NAMES[family]}: each canary",
                    marker={"color": colour, "size": 6, "opacity": 0.5},
                    text=[f"{q['glyph']} ({q['run']})" for _, q in spread],
                    hovertemplate="%{text}: %{y:.2f}%<extra></extra>",
                    visible=c == 0,
                )
            )
            visible.append(c)
    figures.log_x_layout(
        fig,
        "copies of the canary in the training set",
        "% of samples that reproduce it",
        updatemenus=[
            {
                "x": 0,
                "y": 1.15,
                "xanchor": "left",
                "buttons": [
                    {
                        "label": f"copy by {CRITERION_NAMES[criterion]}",
                        "method": "update",
                        "args": [{"visible": [v == c for v in visible]}],
                    }
                    for c, criterion in enumerate(CHART_CRITERIA)
                ],
            }
        ],
    )
    show(
        figures.wrap_figure_text(fig),
        "The share of samples that reproduce a canary, against how many copies of it the training set held: lines "
        "pool the canaries planted that often (and, for the diffusion model, both runs), with 95% confidence "
        "intervals; dots are single canaries. The menu changes the definition of a copy. Samples are judged "
        f"against the model's own training set with each canary counted once ({scale_note(result)}).",
    )
    glue("dose_sentence", dose_sentence(families))
    any_curve = next(iter(families.values()))["points"]
    for point in any_curve:
        glue(f"dose_share_{point['count']}", f"{100 * point['training_share']:.3g}%")


def canary_gallery(ch, run: str = "diffusion") -> None:
    """Every canary of one run (its count above it) beside the samples that came closest to it."""
    result = ch["dose"]
    stage = f"reproduction_{run}"
    kept = result.arrays(stage, CLOSEST_FILE)
    rows = result.summary(stage)["canaries"]
    order = np.argsort([r["count"] for r in rows], kind="stable")
    images, hover = [], []
    for k in order:
        images.append(kept["canaries"][k])
        hover.append(f"{rows[k]['glyph']}, planted {rows[k]['count']:,} times")
        for j in range(kept["images"].shape[1]):
            images.append(kept["images"][k, j])
            hover.append(f"sample seed {int(kept['seeds'][k, j])}: pixel distance {kept['distance'][k, j]:.2f}")
    columns = 1 + kept["images"].shape[1]
    show(
        figures.digit_grid(np.stack(images), hover, columns=columns, scale=2),
        f"Each canary (left column, fewest copies at the top) and the {columns - 1} samples of the "
        f"{MODEL_SUBJECTS['diffusion' if run.startswith('diffusion') else run]} that came closest to it by pixel "
        f"distance. Hover for the count and distances ({scale_note(result)}).",
    )
