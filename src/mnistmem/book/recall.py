"""Chapter 2's second half: what each definition of a copy catches and misses (the `recall` experiment).

Every number comes from `data/results/<scale>/recall/benchmark-*/recall.json` and the calibration baseline;
the gallery shows the planted copies themselves (`examples.npz`), so a reader can check each verdict by eye.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from mnistmem import recall
from mnistmem.book import figures
from mnistmem.book.common import CRITERION_NAMES, html_table, pct, scale_note
from mnistmem.book.display import glue, show, show_html

REPORT_FILE = "recall.json"
EXAMPLES_FILE = "examples.npz"
LEVEL_WORDS = {"mild": "mild", "moderate": "moderate", "strong": "strong"}
#: Row labels short enough for a phone-width heatmap.
SHORT_NAMES = {
    "l2": "pixel distance",
    "nn_ratio": "ratio test",
    "calibrated_l2": "Carlini",
    "ssim": "SSIM",
    "feature_cosine": "classifier",
    "copy_descriptor": "copy descriptor",
}


def _report(result) -> dict:
    return result.json("benchmark", REPORT_FILE)


def _kinds(report: dict) -> list[str]:
    return list(report["degradations"])


def _kind_words(name: str) -> str:
    return name.replace("_", " ")


def recall_gallery(ch, example: int = 0) -> None:
    """One training digit under every kind of damage at every strength; hovering names the definitions
    that still call it a copy at the book's thresholds."""
    from mnistmem.copies import CRITERIA

    result = ch["recall"]
    report = _report(result)
    stored = result.arrays("benchmark", EXAMPLES_FILE)
    cells = stored["cells"].tolist()
    images, hover = [], []
    for kind in _kinds(report):
        for level in LEVEL_WORDS:
            rows = [i for i, c in enumerate(cells) if c == f"{kind}/{level}"]
            i = rows[min(example, len(rows) - 1)]
            images.append(stored["images"][i])
            caught = [
                CRITERION_NAMES.get(n, n)
                for n in report["criteria"]
                if CRITERIA[n].flag(np.array([stored[f"score_{n}"][i]]))[0]
            ]
            strength = report["degradations"][kind]["strengths"][level]
            hover.append(
                f"{_kind_words(kind)}, {level} ({strength:g} {report['degradations'][kind]['unit']}): "
                + (f"a copy for {', '.join(caught)}" if caught else "no definition calls it a copy")
            )
    original = int(stored["originals"][cells.index(cells[0])])
    show(
        figures.digit_grid(np.stack(images), hover, columns=3, scale=3),
        f"Training digit #{original} damaged in {len(_kinds(report))} ways, mildly (left), moderately (middle) "
        "and strongly (right). Every one is still a copy of that training digit. Hover to see which definitions "
        "say so at the thresholds this book uses.",
    )


def recall_table(ch) -> None:
    """Per definition: its threshold, how often it calls independent handwriting a copy (held-out half), and
    how many damaged copies it still catches, by strength; and its AUC."""
    result = ch["recall"]
    report = _report(result)
    kinds = _kinds(report)
    held_out = [k for k in kinds if report["degradations"][k]["held_out"]]
    rows = []
    for name, r in report["criteria"].items():
        book = r["at_book_threshold"]
        fa = book["false_alarms"]
        how = "published" if r["chosen_by"] == "published" else "calibrated"
        rows.append(
            [
                CRITERION_NAMES.get(name, name),
                f"{figures.threshold_text(book['threshold'])} ({how})",
                pct(fa["rate"], fa["ci_low"], fa["ci_high"]),
                " / ".join(f"{100 * recall.recall_at(r, 'book', level):.0f}%" for level in LEVEL_WORDS),
                f"{r['auc']:.3f}",
            ]
        )
    show_html(
        html_table(
            [
                "definition",
                "threshold",
                "false alarms on held-out handwriting (95% CI)",
                "copies caught: mild / moderate / strong damage",
                "AUC",
            ],
            rows,
            f"What each definition misses. {report['positives']:,} damaged copies of "
            f"{report['positives'] // (3 * len(kinds)):,} training digits ({len(kinds)} kinds of damage × 3 "
            f"strengths), and {report['negatives']['report']:,} "
            "test digits the thresholds were not chosen on. AUC: the chance that a damaged copy looks more like a "
            f"copy than a test digit does (1 = always, 0.5 = a coin toss). Held out from the copy descriptor's "
            f"training: {', '.join(_kind_words(k) for k in held_out)}. {scale_note(result)}.",
        )
    )
    glue_recall(report)


def glue_recall(report: dict) -> None:
    """The chapter's numbers: each definition's recall on moderate damage and false-alarm rate at its book
    threshold, and the descriptor's recall on moderate kinds it never saw in training."""
    kinds = _kinds(report)
    held_out = [k for k in kinds if report["degradations"][k]["held_out"]]
    for name, r in report["criteria"].items():
        book = r["at_book_threshold"]
        glue(f"recall_{name}_moderate", pct(recall.recall_at(r, "book", "moderate")))
        glue(f"recall_{name}_false_alarms", pct(book["false_alarms"]["rate"]))
        glue(f"recall_{name}_threshold", figures.threshold_text(book["threshold"]))
    if "copy_descriptor" in report["criteria"]:
        held_out_recall = recall.recall_at(report["criteria"]["copy_descriptor"], "book", "moderate", held_out)
        glue("recall_descriptor_held_out_moderate", pct(held_out_recall))
    glue("recall_positives", f"{report['positives']:,}")
    glue("recall_negatives", f"{report['negatives']['report']:,}")
    glue("recall_kinds", str(len(kinds)))


def recall_heatmap(ch, level: str = "moderate") -> None:
    """Share of copies caught, definition × kind of damage, at one strength and the book's thresholds."""
    report = _report(ch["recall"])
    kinds = _kinds(report)
    names = list(report["criteria"])
    z = np.array(
        [[report["criteria"][n]["at_book_threshold"]["recall_by_cell"][f"{k}/{level}"] for k in kinds] for n in names]
    )
    fig = go.Figure(
        go.Heatmap(
            z=100 * z,
            x=[_kind_words(k) + (" *" if report["degradations"][k]["held_out"] else "") for k in kinds],
            y=[SHORT_NAMES.get(n, n) for n in names],
            zmin=0,
            zmax=100,
            colorscale="Blues",
            text=[[f"{100 * v:.0f}%" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: %{text} of copies caught<extra></extra>",
            colorbar={"title": "% caught", "thickness": 12},
        )
    )
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis={"autorange": "reversed"})
    show(
        fig,
        f"Copies caught at {level} damage, by definition (rows) and kind of damage (columns), at the thresholds "
        "this book uses. * marks kinds of damage the copy descriptor never saw in training.",
    )


def roc_chart(ch) -> None:
    """Each definition's trade-off: false-alarm rate on held-out handwriting against copies caught (all
    kinds and strengths together), on a log scale of false alarms."""
    report = _report(ch["recall"])
    fig = go.Figure()
    for name, r in report["criteria"].items():
        fpr = np.maximum(np.array(r["roc"]["false_alarm_rate"]), 1e-4)
        fig.add_trace(
            go.Scatter(
                x=100 * fpr,
                y=100 * np.array(r["roc"]["recall"]),
                mode="lines",
                name=CRITERION_NAMES.get(name, name),
                hovertemplate="%{x:.2f}% false alarms, %{y:.0f}% of copies caught<extra>%{fullData.name}</extra>",
            )
        )
    fig.add_vline(x=0.1, line_dash="dot", annotation_text="0.1% false alarms")
    fig.update_layout(
        xaxis={"type": "log", "title": "independent test digits called copies (%)"},
        yaxis={"title": "damaged copies caught (%)", "range": [0, 100]},
        height=380,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    show(fig, "The price of catching more copies: every definition, at every threshold (the ROC curve).")
