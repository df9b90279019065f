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
    base_shares,
    before_forgetting,
    items,
    judged,
    membership_sentence,
    method_rows,
    setup,
    share_with_interval,
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
    glue("ul_steps", f"{config.steps:,}")
    rows = config.digits + config.canary_copies
    glue("ul_passes", f"{config.steps * config.batch_size / rows:,.0f}")
    glue("ul_canary_share", _pct(before["canary"]["share"]))
    glue("ul_digit_note", chosen["note"].rstrip("."))
    glue("ul_digit_share", _pct(before["digit"]["share"]))
    glue("ul_strength_note", gate_sentence(result))
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
        + counted_strips(result)
        + f"<p><small>{html.escape(chosen['note'].rstrip('.'))}. {html.escape(scale_note(result))}.</small></p>"
    )


def hits_strip(result, stage: str, file: str, entry: dict, item: dict, words: str, count: int) -> str:
    """One figure: the item, then the first `count` stored samples of `file` that the book's definition counts
    as reproducing it (`entry`: a judged record with its hits and `samples`); "" when none was counted."""
    arrays = result.arrays(stage, file)
    stored = arrays.get("stored")
    shown = [i for i in entry.get("samples", []) if stored is None or stored[i]][:count]
    if not shown:
        return ""
    tiles = np.stack([_item_image(result, item), *arrays["images"][shown]])
    uri = figures.png_data_uri(figures.mosaic(tiles, len(tiles)))
    return (
        f"<figure style='margin:6px 0'><img src='{uri}' style='image-rendering:pixelated;max-width:100%' "
        f"width='{30 * len(tiles)}' alt='{html.escape(item['name'])} and samples counted as copies of it'>"
        f"<figcaption><small>{html.escape(words.format(shown=len(shown), hits=entry['hits']))}</small></figcaption>"
        f"</figure>"
    )


def counted_strips(result, count: int = 15) -> str:
    """For each item, the item and the first base-model samples the book's definition counts as reproducing it:
    what the percentages above are made of, for the reader to judge (a verdict the pictures contradict is a bug)."""
    parts = []
    for entry in before_forgetting(result).values():
        if not isinstance(entry, dict) or "item" not in entry:
            continue
        name = entry["item"]["name"]
        words = f"{name} (left), then the first {{shown}} of the {{hits}} samples counted as reproducing it"
        parts.append(hits_strip(result, "choose", "samples.npz", entry, entry["item"], words, count))
    return "".join(parts)


def gate_sentence(result) -> str:
    """How often the base model and the SISA ensemble reproduce each item before any forgetting (with 95%
    intervals), measured against the gate a comparison of methods needs (`BASE_SHARE_GATE`)."""
    from mnistmem.experiments.unlearning import BASE_SHARE_GATE

    shares = base_shares(result)
    base, sisa = shares.get("base", {}), shares.get("sisa", {})
    if not base:
        return ""
    gate = f"{100 * BASE_SHARE_GATE:.0f}%"
    words = {"canary": "the sign", "digit": "the copied digit"}
    measured = [f"{words[k]} in {share_with_interval(e)}" for k, e in base.items() if k in words]
    short = [words[k] for k, e in base.items() if k in words and not e["meets_gate"]]
    text = (
        f"In numbers, the base model reproduces {' and '.join(measured)} of its samples (95% intervals). A method "
        f"can only be told apart from doing nothing on an item its starting model reproduces often enough; this "
        f"experiment asks for at least {gate} of samples. "
    )
    if not short:
        text += "Both items clear that bar. " if len(measured) > 1 else "It clears that bar. "
    else:
        text += f"{' and '.join(short).capitalize()} falls short of it, so the rows for it below say less. "
    if sisa.get("canary"):
        text += (
            f"The SISA ensemble, trained shard by shard on the same data, reproduces the sign in "
            f"{share_with_interval(sisa['canary'])} of its own samples before forgetting"
            + ("." if sisa["canary"]["meets_gate"] else f", short of the {gate} bar.")
        )
    return text


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
        # points closer than the markers' size (a tenth of a decade, half a percentage point) share one label
        key = (round(float(np.log10(px)), 1), round(2 * float(py)) / 2)
        spots.setdefault(key, []).append(METHOD_NAMES[row["method"]])
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
        if row["method"] in ("retrain", "sisa", "finetune", "neggrad"):
            glue(f"ul_{row['method']}_{row['target']}_relearned", _pct((row["relearned"] or {}).get("share")))
    base = before_forgetting(result)

    def own_base(r: dict) -> dict:  # what the method started from: SISA its own ensemble, the rest the base model
        if r.get("before") is not None:
            return {"item": r["before"], "fid": r.get("base_fid"), "recognised": r.get("base_recognised")}
        return {"item": base.get(r["target"]), "fid": base.get("fid"), "recognised": base.get("recognised")}

    cost = [
        [
            TARGET_NAMES[r["target"]],
            METHOD_NAMES[r["method"]],
            f"{r['cost']['steps']:,}",
            f"{r['relative_cost']:.2f}×",
            f"{r['cost']['seconds']:.0f} s",
            share_with_interval(own_base(r)["item"]),
            share_with_interval(r["forgotten"]),
            _num(r["forgotten"]["closest_distance"]),
        ]
        for r in rows
    ]
    side_effects = [
        [
            TARGET_NAMES[r["target"]],
            METHOD_NAMES[r["method"]],
            _pct(r["control"]["share"]) if r["control"] else "–",
            f"{_num(r['fid'], 1)} ({_num(own_base(r)['fid'], 1)})",
            f"{_pct(r.get('recognised'))} ({_pct(own_base(r)['recognised'])})",
            membership_ranks(own_base(r)["item"], r),
            share_with_interval(r["relearned"]) if r["relearned"] else "not run",
        ]
        for r in rows
    ]
    show_html(
        html_table(
            [
                "item",
                "method",
                "steps",
                "compute vs retrain",
                "wall time",
                "item before (its starting model)",
                "item after",
                "closest to item",
            ],
            cost,
            f"Unlearning, method by method: what it cost and how often the item appears among the samples of the "
            f"model it started from and after forgetting (95% intervals in brackets). {scale_note(result)}.",
        )
    )
    show_html(
        html_table(
            [
                "item",
                "method",
                "control in samples",
                "MNIST-FID (before)",
                "recognised (before)",
                "membership rank: before → after → relearned",
                "item after the relearning attack",
            ],
            side_effects,
            "The same methods: side effects and traces, each beside the model it started from (in brackets; for SISA "
            "its own ensemble). 'Recognised': samples the digit classifier reads with at least 90% confidence. "
            "'Membership rank': the share of unseen test digits the model fits better than the item (near 0: the item "
            "still stands out as training data), before forgetting, after, and after the relearning attack. Quality "
            "columns show '–' when the pretrained classifier is not available.",
        )
    )
    glue("ul_membership_sentence", membership_sentence(result))


def membership_ranks(before: dict | None, row: dict) -> str:
    """The forgotten item's membership rank before forgetting, after, and after relearning ("–" where not run)."""
    steps = [before, row["forgotten"], row["relearned"]]
    return " → ".join(_pct(s["membership"]["rank"]) if s and s.get("membership") else "–" for s in steps)


def relearning_chart(ch) -> None:
    """The forgotten item's share of samples right after each method and after a short relearning without it."""
    result = _result(ch)
    from mnistmem.stats import wilson_interval

    rows = [r for r in method_rows(result) if r["relearned"] is not None]
    labels = [f"{METHOD_NAMES[r['method']]} ({TARGET_NAMES[r['target']]})" for r in rows]

    def bars(entries: list[dict]) -> dict:
        bounds = [wilson_interval(e["hits"], e["n"]) for e in entries]
        y = [100 * e["share"] for e in entries]
        return {
            "x": labels,
            "y": y,
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [100 * high - v for (_, high), v in zip(bounds, y, strict=True)],
                "arrayminus": [v - 100 * low for (low, _), v in zip(bounds, y, strict=True)],
                "color": "#444",
            },
            "text": [_pct(e["share"]) for e in entries],
            "textposition": "outside",
        }

    fig = go.Figure(
        [
            go.Bar(
                name="right after forgetting", marker_color=figures.PALETTE[0], **bars([r["forgotten"] for r in rows])
            ),
            go.Bar(
                name="after the relearning attack",
                marker={"color": figures.PALETTE[4], "line": {"color": figures.PALETTE[0], "width": 1}},
                **bars([r["relearned"] for r in rows]),
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
    steps, nearby = setup(result).relearn_steps, setup(result).relearn_nearby
    glue("ul_relearn_steps", steps)
    glue("ul_relearn_nearby", nearby)
    show(
        fig,
        f"How often the forgotten item appears right after each method and after the relearning attack: {steps} "
        f"further training steps on the data without the item plus the {nearby} digits most like it that the model "
        f"never saw. Retraining is the control: its model never held the item, so whatever comes back there was "
        f"taught by the look-alikes alone. Bars: 95% intervals. {scale_note(result)}.",
    )
    show_html(relearned_strips(result, rows))


def relearned_strips(result, rows: list[dict], count: int = 12) -> str:
    """For each method, the item and the first samples counted as reproducing it after the relearning attack,
    with how many the pixel-distance definition counts: the bars above are made of these."""
    from mnistmem.book.sentences import CONFIRMING_CRITERION

    parts = []
    for row in rows:
        entry = row["relearned"]
        pixel = entry.get("by_criterion", {}).get(CONFIRMING_CRITERION, {}).get("hits")
        words = (
            f"{METHOD_NAMES[row['method']]} ({TARGET_NAMES[row['target']]}), after the attack: the item, then "
            f"{{shown}} of the {{hits}} samples the copy descriptor counts as copies of it"
            + ("" if pixel is None else f" (the calibrated pixel distance counts {pixel})")
        )
        parts.append(hits_strip(result, row["stage"], "relearned.npz", entry, entry["item"], words, count))
    return "".join(parts)


def lookalikes(ch) -> None:
    """Each item beside the look-alike digits the relearning attack trains on (none is a copy of it)."""
    result = _result(ch)
    from mnistmem import data

    train, _ = data.load_mnist("train")
    parts = []
    for kind in ("canary", "digit"):
        item = items(result)[kind]
        if not item or "nearby" not in item:
            continue
        tiles = np.stack([_item_image(result, item), *train[item["nearby"]["index"]]])
        distances = ", ".join(f"{d:.2f}" for d in item["nearby"]["distance"])
        uri = figures.png_data_uri(figures.mosaic(tiles, len(tiles)))
        parts.append(
            f"<figure style='display:inline-block;margin:6px'><img src='{uri}' "
            f"width='{30 * len(tiles)}' style='image-rendering:pixelated' alt='{html.escape(item['name'])} and the "
            f"digits most like it that the model never saw'><figcaption><small>{html.escape(item['name'])}, then its "
            f"look-alikes (pixel distances {distances})</small></figcaption></figure>"
        )
    show_html("".join(parts) + f"<p><small>{html.escape(scale_note(result))}.</small></p>")


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


def position_sentences(result, target: str = "canary") -> dict[str, str]:
    """The four positions of the debate, each answered by what was measured on `target` (one sentence or two
    each, built from the same rows as the table and the charts)."""
    from mnistmem.book.sentences import WRECKED_FID_FACTOR, method_outcome

    rows = {r["method"]: r for r in method_rows(result) if r["target"] == target}
    base = before_forgetting(result)
    before = base.get(target)
    if not rows or before is None or "retrain" not in rows:
        return {key: "" for key in ("retrain", "sisa", "approximate", "eggs")}
    what = "the sign" if target == "canary" else "the copied digit"
    retrain = rows["retrain"]
    before = {**before, "fid": base.get("fid")}
    removed = method_outcome(retrain, before, None) in ("removed", "reduced")
    out = {
        "retrain": (
            f"{'Retraining works, at full cost' if removed else 'Retraining is exact by construction'}: {what} went "
            f"from {share_with_interval(before)} of samples to {share_with_interval(retrain['forgotten'])}"
            + ("" if removed else " (the intervals overlap: at this scale the counts cannot show the drop)")
            + f", for {retrain['cost']['images']:,} training images processed ({retrain['cost']['seconds']:.0f} "
            f"seconds here)."
        )
    }
    sisa = rows.get("sisa")
    if sisa is not None:
        own = sisa.get("before") or before
        text = (
            f"SISA needed {1 / max(sisa['relative_cost'], 1e-9):.1f} times less computation than retraining (Bourtoule "
            f"et al. report 1.36 to 4.63 times on their data sets); its ensemble reproduced {what} in "
            f"{share_with_interval(own)} of samples before forgetting and {share_with_interval(sisa['forgotten'])} "
            f"after. "
        )
        if sisa.get("fid") is not None and sisa.get("base_fid") is not None:
            text += (
                f"The price is paid in quality, once, at training time: the ensemble of small models scores MNIST-FID "
                f"{sisa['base_fid']:.0f} before forgetting, against {before['fid']:.0f} for the single model "
                f"(lower is better)."
                if before.get("fid") is not None and sisa["base_fid"] > 1.2 * before["fid"]
                else f"Its samples were about as good as the single model's (MNIST-FID {sisa['base_fid']:.0f})."
            )
        out["sisa"] = text
    else:
        out["sisa"] = ""
    verdicts = {
        "hidden": "more than the look-alikes teach the retrained model: hidden, not removed",
        "removed": "no more than the look-alikes teach the retrained model",
        "reduced": "no more than the look-alikes teach the retrained model",
        "wrecked": "but the model had also forgotten how to draw digits well",
        "undecided": "the method had not measurably removed it in the first place",
        "unconfirmed": (
            "but only the copy descriptor counts those, no pixel-distance definition does; the samples it counts, "
            "shown under the chart above, do not look like the sign: a false alarm of the descriptor rather than the "
            "sign coming back"
        ),
    }
    from mnistmem.stats import newcombe_difference_interval

    approx, hidden = [], []
    for method in ("finetune", "neggrad"):
        row = rows.get(method)
        if row is None or row["relearned"] is None:
            continue
        after, again = row["forgotten"], row["relearned"]
        outcome = method_outcome(row, before, retrain["relearned"])
        if outcome == "hidden":
            hidden.append(METHOD_NAMES[method])
        verdict = verdicts[outcome]
        control = retrain["relearned"]
        if outcome in ("removed", "reduced") and control is not None:
            above = newcombe_difference_interval(again["hits"], again["n"], control["hits"], control["n"])[0] > 0
            if above:
                verdict = "still more than in the retrained model: reduced, not removed"
        text = (
            f"{METHOD_NAMES[method][0].upper() + METHOD_NAMES[method][1:]} left {what} in "
            f"{share_with_interval(after)} of samples, and the relearning attack brought it to "
            f"{share_with_interval(again)} ({verdict})"
        )
        base_fid = before.get("fid")
        if outcome != "wrecked" and base_fid and row.get("fid") and row["fid"] > WRECKED_FID_FACTOR * base_fid:
            text += (
                f"; it also left the model drawing digits badly (MNIST-FID {row['fid']:.0f} against "
                f"{base_fid:.0f} before)"
            )
        approx.append(text)
    if approx:
        control = share_with_interval(retrain["relearned"]) if retrain["relearned"] else "–"
        out["approximate"] = (
            "; ".join(approx) + f". The same attack on the retrained model gives {control}: that is what the "
            f"look-alike digits alone teach."
        )
    else:
        out["approximate"] = ""
    diff = result.summary(f"diff_{target}")
    if "norms" in diff:
        item, seed = diff["norms"]["item"]["relative"], diff["norms"]["seed"]["relative"]
        arrays = result.arrays(f"diff_{target}", diff["file"])
        per_layer = np.array(
            [n for name, n in zip(arrays["layers"], arrays["item_norm"], strict=True) if name != "all"]
        )
        top = float((per_layer**2).max() / max((per_layer**2).sum(), 1e-30))
        spread = (
            f"no single layer holds more than {100 * top:.0f}% of it"
            if top < 0.5
            else f"one layer holds {100 * top:.0f}% of it"
        )
        out["eggs"] = (
            f"The exact difference the item makes is {100 * item:.1f}% of the length of the weights, "
            f"{'less than' if item < 0.9 * seed else 'more than' if item > 1.1 * seed else 'about as much as'} the "
            f"{100 * seed:.1f}% that merely changing the random seed makes, and {spread}. "
            + (
                "In that sense the egg is scrambled: there is no separate piece to cut out. "
                if top < 0.5
                else "So the item's trace sits largely in one place. "
            )
            + (
                "But scrambled is not inseparable: retraining without the item removes it"
                if removed
                else "Whether it is separable the counts here cannot show: even retraining's drop is within the noise"
            )
            + (f", while {' and '.join(hidden)} only hid it." if hidden else ".")
        )
    else:
        out["eggs"] = ""
    return out


def positions(ch) -> None:
    """Glue the four positions' measured answers (`position_sentences`) for the chapter's closing section."""
    for key, text in position_sentences(_result(ch)).items():
        glue(f"ul_position_{key}", text)
