"""Chapter 7 (where is the copy?): what the weights could hold, and what a search of the model finds.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import html_table, model_name, scale_note
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.sentences import extraction_sentence


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
