"""What chapter 8 (unlearning) shows: the items forgotten, cost against residual copying, the table of every
measure, relearning, the weight "diff", sample galleries, and a live control to pick item and method.

Every function reads the `unlearning` experiment's results (`ch["unlearning"]`), displays one figure or table
with a caption that states the scale, and glues the numbers the prose quotes. Nothing here trains a model.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import html_table, scale_note
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.unlearning_facts import (
    EXPERIMENT,
    METHOD_NAMES,
    TARGET_NAMES,
    _num,
    _pct,
    before_forgetting,
    items,
    judged,
    method_rows,
    setup,
)
from mnistmem.book.unlearning_facts import item_image as _item_image


def _result(ch):
    return ch[EXPERIMENT]


# ------------------------------------------------------------------------------------------------- views
def unlearning_targets(ch) -> None:
    """The two items and the base model's samples closest to each; glue the facts the prose quotes."""
    result = _result(ch)
    chosen = items(result)
    before = before_forgetting(result)
    config = setup(result)
    glue("ul_scale_note", scale_note(result))
    glue("ul_digits", config.digits)
    glue("ul_canary_copies", config.canary_copies)
    glue("ul_samples", config.samples)
    glue("ul_steps", config.steps)
    glue("ul_canary_share", _pct(before["canary"]["share"]))
    glue("ul_digit_note", chosen["note"].rstrip("."))
    glue("ul_digit_share", _pct(before["digit"]["share"]))
    hits, n = before["canary"]["hits"], before["canary"]["n"]
    glue(
        "ul_strength_note",
        ""
        if hits >= 25
        else f"That is only {hits} of {n} samples, too few for the counts below to tell the methods apart "
        "reliably: at this scale the closest distance to the sign, sample quality and the membership signal carry "
        "more of the comparison, and the gpu scale (a longer-trained model and more samples) is needed to settle it.",
    )
    images, _ = result.samples("choose")
    parts = []
    for kind in ("canary", "digit"):
        entry = before[kind]
        item_image = _item_image(result, entry["item"])
        closest = images[entry["closest_sample"]]
        label = entry["item"]["name"] + ("" if kind == "canary" or chosen["digit"] else " (control only)")
        parts.append(
            f"<div class='mnistmem-pair' tabindex='0'>"
            f"<img src='{figures.png_data_uri(figures.pair_strip(closest[None], item_image[None]))}' "
            f"width='{figures.PAIR_WIDTH}' height='{figures.PAIR_WIDTH * 28 // 88}' data-digits='3' "
            f"alt='{html.escape(label)}: closest base-model sample, the item, their difference'><p "
            f"class='mnistmem-pair-title'>{html.escape(label)}: reproduced by "
            f"{_pct(entry['share'])} of {entry['n']} samples; closest sample at distance "
            f"{entry['closest_distance']:.2f} (sample | item | difference)</p></div>"
        )
    show_html(
        "<div class='mnistmem-pairs'><div class='mnistmem-pair-grid'>"
        + "".join(parts)
        + "</div></div>"
        + f"<p><small>{html.escape(chosen['note'].rstrip('.'))}. {html.escape(scale_note(result))}.</small></p>"
    )


def quality_sentence(result, target: str = "canary") -> str:
    """Sample quality (MNIST-FID) before and after each method, each against the model it started from (SISA
    against its own ensemble before forgetting, the others against the base model): it separates methods that
    the counts of the forgotten item cannot, such as one that erases the item by wrecking the model."""
    stages = result.manifest["stages"]
    before = result.summary("choose")["before"]["fid"]
    sisa_before = result.summary("sisa_train")["before"].get("fid") if "sisa_train" in stages else None
    parts = []
    for method, words in (
        ("retrain", "after retraining"),
        ("sisa", "with SISA"),
        ("finetune", "after fine-tuning"),
        ("neggrad", "after NegGrad"),
    ):
        stage = f"{method}_{target}"
        if stage in stages and "after" in result.summary(stage) and result.summary(stage)["after"].get("fid"):
            text = f"{result.summary(stage)['after']['fid']:.0f} {words}"
            if method == "sisa" and sisa_before is not None:
                text += f" (its own ensemble: {sisa_before:.0f} before forgetting)"
            parts.append(text)
    if before is None or not parts:
        return ""
    return (
        f"Sample quality separates the methods where those counts cannot: MNIST-FID (lower is better) was "
        f"{before:.0f} for the base model before forgetting, and " + ", ".join(parts) + "."
    )


def unlearning_tradeoff(ch) -> None:
    """Cost (relative to retraining) against how often the forgotten item still appears, one point per method."""
    result = _result(ch)
    rows = method_rows(result)
    if not rows:
        show_html("<p>No unlearning results to show.</p>")
        return
    glue("ul_quality_sentence", quality_sentence(result))
    pairs, hover = [], []
    for row in rows:
        images, _ = result.samples(row["stage"], row["file"])
        item = _item_image(result, row["forgotten"]["item"])
        pairs.append((images[row["forgotten"]["closest_sample"]], item))
        hover.append(
            f"{METHOD_NAMES[row['method']]}, forgetting {row['forgotten']['item']['name']}<br>"
            f"cost {row['relative_cost']:.2f}× retraining; item in {_pct(row['forgotten']['share'])} of samples; "
            f"closest {row['forgotten']['closest_distance']:.2f}"
        )
    x = np.array([max(r["relative_cost"], 1e-3) for r in rows])
    y = np.array([100 * r["forgotten"]["share"] for r in rows])
    groups = np.array([0 if r["target"] == "canary" else 1 for r in rows])
    fig, script = figures.hover_pair_scatter(
        x,
        y,
        pairs,
        hover,
        "compute, relative to retraining from scratch (log scale)",
        "samples that reproduce the forgotten item (%)",
        groups=groups,
        group_names={0: "forgetting the canary", 1: "forgetting the copied digit"},
    )
    fig.update_xaxes(type="log")
    before = before_forgetting(result)
    fig.add_hline(y=100 * before["canary"]["share"], line_dash="dot", annotation_text="canary before forgetting")
    spots: dict[tuple, list[str]] = {}
    for row, px, py in zip(rows, x, y, strict=True):
        spots.setdefault((round(float(np.log10(px)), 1), round(float(py), 1)), []).append(METHOD_NAMES[row["method"]])
    for (lx, ly), names in spots.items():
        if len(names) > 1:
            fig.add_annotation(x=lx, y=ly, text=f"{len(names)} points here", showarrow=True, arrowhead=0, ax=0, ay=-28)
    show(
        fig,
        f"Each point is one unlearning method applied to one item: its compute (training images processed, relative to "
        f"retraining from scratch; the diff points include the retraining needed to compute the diff) against the "
        f"share of {rows[0]['forgotten']['n']} samples that still reproduce the item. Hover a point to see its closest "
        f"sample beside the item. {scale_note(result)}.",
        post_script=script,
    )


def sisa_note(row: dict) -> str:
    """What SISA's saving is worth: nothing measurable when its own ensemble did not reproduce the item before."""
    before = row.get("before")
    if before is None or before["hits"] > 0:
        return ""
    return (
        f"But the SISA ensemble (one smaller model per shard) had not reproduced the sign before forgetting either "
        f"(0 of {before['n']:,} of its samples), so at this scale its saving removed nothing that could be measured."
    )


def unlearning_table(ch) -> None:
    """Every measure for every method and item."""
    result = _result(ch)
    rows = method_rows(result)
    for row in rows:
        if row["method"] == "retrain":
            glue(f"ul_retrain_{row['target']}_share", _pct(row["forgotten"]["share"]))
            glue(f"ul_retrain_{row['target']}_seconds", f"{row['cost']['seconds']:.0f}")
        if row["method"] == "sisa":
            glue(f"ul_sisa_{row['target']}_speedup", f"{1 / max(row['relative_cost'], 1e-9):.1f}")
            glue(f"ul_sisa_{row['target']}_note", sisa_note(row))
        if row["method"] in ("finetune", "neggrad"):
            glue(f"ul_{row['method']}_{row['target']}_share", _pct(row["forgotten"]["share"]))
            glue(f"ul_{row['method']}_{row['target']}_relearned", _pct((row["relearned"] or {}).get("share")))
    cost = [
        [
            TARGET_NAMES[r["target"]],
            METHOD_NAMES[r["method"]],
            f"{r['cost']['steps']:,}",
            f"{r['relative_cost']:.2f}×",
            f"{r['cost']['seconds']:.0f} s",
            _pct(r["forgotten"]["share"]),
            _num(r["forgotten"]["closest_distance"]),
        ]
        for r in rows
    ]
    side_effects = [
        [
            TARGET_NAMES[r["target"]],
            METHOD_NAMES[r["method"]],
            _pct(r["control"]["share"]) if r["control"] else "–",
            _num(r["fid"], 1),
            _num(r["confidence"]),
            _num(r["forgotten"]["membership"]["rank"]),
            _pct(r["relearned"]["share"]) if r["relearned"] else "not run",
        ]
        for r in rows
    ]
    show_html(
        html_table(
            ["item", "method", "steps", "compute vs retrain", "wall time", "item in samples", "closest to item"],
            cost,
            f"Unlearning, method by method: what it cost and whether the item still comes back. {scale_note(result)}.",
        )
    )
    show_html(
        html_table(
            [
                "item",
                "method",
                "control in samples",
                "MNIST-FID",
                "confidence",
                "membership rank",
                "item after relearning",
            ],
            side_effects,
            "The same methods: side effects and traces. 'Membership rank': the share of unseen test digits the model "
            "fits better than the item (near 0: the item still stands out as training data). Quality columns show "
            "'–' when the pretrained classifier is not available.",
        )
    )


def relearning_chart(ch) -> None:
    """The forgotten item's share of samples right after each method and after a short relearning without it."""
    result = _result(ch)
    rows = [r for r in method_rows(result) if r["relearned"] is not None]
    labels = [f"{METHOD_NAMES[r['method']]} ({TARGET_NAMES[r['target']]})" for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                name="right after forgetting",
                x=labels,
                y=[100 * r["forgotten"]["share"] for r in rows],
                marker_color=figures.PALETTE[0],
                text=[_pct(r["forgotten"]["share"]) for r in rows],
                textposition="outside",
            ),
            go.Bar(
                name="after relearning without the item",
                x=labels,
                y=[100 * r["relearned"]["share"] for r in rows],
                marker={"color": figures.PALETTE[4], "line": {"color": figures.PALETTE[0], "width": 1}},
                text=[_pct(r["relearned"]["share"]) for r in rows],
                textposition="outside",
            ),
        ]
    )
    fig.update_layout(
        barmode="group",
        yaxis={"title": "samples that reproduce the item (%)", "rangemode": "tozero"},
        height=460,
        plot_bgcolor="white",
        margin={"b": 140, "t": 90},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    )
    fig.update_traces(textfont={"size": 11}, cliponaxis=False)
    values = [r["forgotten"]["share"] for r in rows] + [r["relearned"]["share"] for r in rows]
    if rows and not any(values):
        fig.update_yaxes(range=[0, 1])
        fig.add_annotation(
            text="every bar is 0%: no sample reproduces the item,<br>right after forgetting or after relearning",
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.6,
            showarrow=False,
            font={"size": 13},
        )
    steps = setup(result).relearn_steps
    glue("ul_relearn_steps", steps)
    show(
        fig,
        f"How often the forgotten item appears right after each method and after {steps} further training steps on "
        f"data without it. {scale_note(result)}.",
    )


def where_sentence(layers: list[str], arrays) -> str:
    """Is the with/without difference concentrated in a few layers or spread out, and is it larger than the
    difference a new random seed makes?"""
    per_layer = [(name, float(norm)) for name, norm in zip(layers, arrays["item_norm"], strict=True) if name != "all"]
    total = sum(norm**2 for _, norm in per_layer)
    ranked = sorted(per_layer, key=lambda pair: -pair[1])
    top_share = ranked[0][1] ** 2 / max(total, 1e-30)
    needed = next(k for k in range(1, len(ranked) + 1) if sum(n**2 for _, n in ranked[:k]) >= 0.5 * total)
    item, seed = float(arrays["item_relative"][-1]), float(arrays["seed_relative"][-1])
    comparison = "less than" if item < 0.9 * seed else "more than" if item > 1.1 * seed else "about as much as"
    return (
        f"The largest single layer ({ranked[0][0]}) holds {100 * top_share:.0f}% of the difference, and "
        f"{needed} of the {len(per_layer)} layers are needed to account for half of it. Removing the item moves "
        f"the weights {comparison} training the same data with another random seed does."
    )


def weight_diff_summary(ch) -> None:
    """How large the with/without difference is per layer, against seed noise and fine-tuning, and what adding it
    to other models does."""
    result = _result(ch)
    target = "canary"
    summary = result.summary(f"diff_{target}")
    if "skipped" in summary:
        show_html(f"<p>{html.escape(summary['skipped'])}</p>")
        return
    arrays = result.arrays(f"diff_{target}", summary["file"])
    layers = [str(x) for x in arrays["layers"]]
    fig = go.Figure()
    names = {
        "item": "retrained without the item − original",
        "seed": "another seed − original (same data)",
        "finetune": "fine-tuned − original",
    }
    for k, (key, name) in enumerate(names.items()):
        fig.add_trace(go.Bar(name=name, x=layers, y=arrays[f"{key}_relative"], marker_color=figures.PALETTE[k]))
    fig.update_layout(
        barmode="group",
        yaxis_title="size of difference / size of weights",
        height=440,
        plot_bgcolor="white",
        margin={"b": 160},
    )
    norms = summary["norms"]
    glue("ul_diff_where", where_sentence(layers, arrays))
    glue("ul_diff_item", f"{100 * norms['item']['relative']:.1f}%")
    glue("ul_diff_seed", f"{100 * norms['seed']['relative']:.1f}%")
    glue("ul_diff_finetune", f"{100 * norms['finetune']['relative']:.1f}%")
    show(
        fig,
        "Where the weights differ, layer by layer (the last group, 'all', is the whole model): removing the canary "
        "and retraining, against training the same data with another seed, and against fine-tuning. "
        f"{scale_note(result)}.",
    )
    rows = []
    for key, applied in summary["applied"].items():
        applied = judged(result, f"diff_{target}", f"applied:{key}", applied)
        glue(f"ul_diff_{key}_share", _pct(applied["forgotten"]["share"]))
        glue(f"ul_diff_{key}_fid", f"{applied['fid']:.0f}" if applied.get("fid") is not None else "not measured")
        rows.append(
            [
                METHOD_NAMES[f"diff_{applied['host']}"],
                f"{applied['scale']:g}",
                _pct(applied["forgotten"]["share"]),
                _num(applied["forgotten"]["closest_distance"]),
                _pct(applied["control"]["share"]) if applied.get("control") else "–",
                _num(applied.get("fid"), 1),
            ]
        )
    show_html(
        html_table(
            ["added to", "scale", "canary in samples", "closest to canary", "control in samples", "MNIST-FID"],
            rows,
            "Adding the difference to other models.",
        )
    )
    other = summary["applied"].get("other_seed_x1", {}).get("fid")
    before = result.summary("choose")["before"].get("fid")
    if other is None or before is None:
        transfer = ""
    elif other > 1.5 * before:
        transfer = (
            "A diff computed between one pair of models did not carry over to another: added to the model trained "
            "with another seed, it ruined that model's samples (the galleries under 'Before and after')."
        )
    else:
        transfer = (
            "Added to the model trained with another seed, the diff left that model's samples about as good as "
            "before (the galleries under 'Before and after')."
        )
    glue("ul_diff_transfer", transfer)


def sample_galleries(ch, count: int = 30) -> None:
    """The first samples of the original model and of each method (forgetting the canary), side by side."""
    result = _result(ch)
    shown = [("original model", "choose", "samples.npz")]
    shown += [
        (METHOD_NAMES[r["method"]], r["stage"], r["file"]) for r in method_rows(result) if r["target"] == "canary"
    ]
    parts = []
    for name, stage, file in shown:
        images, _ = result.samples(stage, file)
        grid = figures.mosaic(images[:count], columns=10)
        parts.append(
            f"<figure style='display:inline-block;margin:6px'><img src='{figures.png_data_uri(grid)}' width='300' "
            f"alt='first {count} samples: {html.escape(name)}' style='image-rendering:pixelated'>"
            f"<figcaption><small>{html.escape(name)}</small></figcaption></figure>"
        )
    show_html(
        "".join(parts) + f"<p><small>The same seeds for every model. {html.escape(scale_note(result))}.</small></p>"
    )


def explorer(ch):
    """The live control: pick the item and the method, see what remains (a note in the static book)."""
    from mnistmem.book import widgets
    from mnistmem.book.unlearning_widget import ForgetExplorer

    control = ForgetExplorer(_result(ch))
    widgets.show(control)
    return control
