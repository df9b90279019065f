"""Plotly figures for the book. Each function takes arrays and returns a `plotly.graph_objects.Figure`.

Digits are drawn as PNG mosaics (compact, sharp at any zoom) rather than as heatmaps, so a page stays small
even with hundreds of digits. Interactive figures use only plotly's own controls (dropdowns, sliders,
hover), plus a few lines of JavaScript for hover images, so they work in the static book with no kernel.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image

#: Colours that stay distinct in greyscale (different lightness), for lines and markers that are not a model:
#: black (thresholds, chance), then brown, dark grey, light orange and light grey for methods and baselines.
PALETTE = ["#1b1b1b", "#a6611a", "#4d4d4d", "#e69f00", "#c8c8c8"]

#: One colour per model family, the same in every chart of the book (vermilion, sky blue, purple: told apart by
#: colour-blind readers and in greyscale). A model trained on a subset keeps its family's colour.
MODEL_COLOURS = {"gan": "#d55e00", "vae": "#56b4e9", "diffusion": "#5e3c99"}


def model_colour(name: str) -> str:
    """The colour of a model, from its tag ("diffusion_100") or its name ("Diffusion, 100 digits")."""
    family = name.lower().replace(",", "_").replace(" ", "_").partition("_")[0]
    if family not in MODEL_COLOURS:
        raise KeyError(f"no colour for model {name!r}: known families {sorted(MODEL_COLOURS)}")
    return MODEL_COLOURS[family]


def ramp(colour: str, count: int) -> list[str]:
    """`count` shades of `colour` ("#rrggbb"), from light to the colour itself: one line per training-set size
    of one model, the largest darkest, so the order reads in greyscale too."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    mix = np.linspace(0.75, 0.0, count) if count > 1 else np.zeros(1)
    return ["#" + "".join(f"{round(c):02x}" for c in rgb + (255 - rgb) * m) for m in mix]


def percent_interval(rows) -> dict:
    """Plotly error bars (for `error_y` or `error_x`) of shares in percent: each row a dict with `share`,
    `ci_low` and `ci_high` as fractions (the 95% intervals every summary records)."""
    rows = list(rows)
    return {
        "type": "data",
        "symmetric": False,
        "array": [100 * (r["ci_high"] - r["share"]) for r in rows],
        "arrayminus": [100 * (r["share"] - r["ci_low"]) for r in rows],
        "thickness": 1,
    }


def log_x_layout(fig: go.Figure, x_title: str, y_title: str, height: int = 430, log_y: bool = False, **extra) -> None:
    """The layout of the book's curves over a quantity that doubles (steps, sizes, copies): a logarithmic x axis,
    a y axis from zero (or logarithmic), white ground, the legend below."""
    yaxis = {"title": y_title, **({"type": "log"} if log_y else {"rangemode": "tozero"})}
    fig.update_layout(
        height=height,
        plot_bgcolor="white",
        xaxis={"type": "log", "title": x_title},
        yaxis=yaxis,
        legend={"orientation": "h", "y": -0.3},
        **extra,
    )


def threshold_text(value: float, significant: int = 3) -> str:
    """A threshold or score as text, with the digits that matter: enough decimals that both the number and its
    distance to the nearest whole number keep `significant` significant digits, trailing zeros dropped.

    So a distance threshold of 0.75 reads 0.75 (not 0.8), a similarity threshold of 0.9997 reads 0.9997 (not
    1: near 1 what matters is how far below 1 it is), 1/3 reads 0.333 and 1.0 reads 1."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)

    def places(x: float) -> int:
        return 0 if x == 0 else max(0, significant - 1 - math.floor(math.log10(abs(x))))

    text = f"{value:.{max(places(value), places(value - round(value)))}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


#: Chart text (legend entries, axis titles, notes) wraps after this many characters, so a figure's words stay
#: inside it on a phone (390 px) as well as on a laptop.
WRAP_CHARACTERS = 38


def wrap_label(text: str, width: int = WRAP_CHARACTERS) -> str:
    """Break a plotly label into lines of at most `width` characters (at spaces; existing <br> kept)."""
    import textwrap

    if not isinstance(text, str) or len(text) <= width:
        return text
    lines = []
    for part in text.split("<br>"):
        visible = len(re.sub(r"<[^>]+>", "", part))
        lines += textwrap.wrap(part, width + len(part) - visible, break_on_hyphens=False) if visible > width else [part]
    return "<br>".join(lines)


def wrap_figure_text(fig: go.Figure, width: int = WRAP_CHARACTERS) -> go.Figure:
    """Wrap every long legend entry, axis title, subplot title and note of `fig` in place (see `wrap_label`)."""
    for trace in fig.data:
        if isinstance(getattr(trace, "name", None), str):
            trace.name = wrap_label(trace.name, width)
    for annotation in fig.layout.annotations or ():
        annotation.text = wrap_label(annotation.text, width)
    for name in fig.layout:
        if name.startswith(("xaxis", "yaxis")):
            axis = fig.layout[name]
            if axis.title and axis.title.text:
                axis.title.text = wrap_label(axis.title.text, width)
    return fig


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 greyscale image as a `data:image/png;base64,...` URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mosaic(images: np.ndarray, columns: int, gap: int = 2, background: int = 255) -> np.ndarray:
    """Tile uint8 images [N,H,W] into one image, `columns` per row, separated by `gap` pixels."""
    images = np.asarray(images, dtype=np.uint8)
    n, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), background, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = image
    return canvas


def digit_grid(
    images: np.ndarray,
    hover: Sequence[str],
    columns: int = 10,
    title: str = "",
    scale: int = 2,
) -> go.Figure:
    """A grid of digits with one hover label per digit."""
    images = np.asarray(images, dtype=np.uint8)
    if len(hover) != len(images):
        raise ValueError(f"need one hover label per image: {len(hover)} labels for {len(images)} images")
    gap, (n, h, w) = 2, images.shape
    canvas = mosaic(images, columns, gap=gap)
    positions = [divmod(i, columns) for i in range(n)]
    fig = go.Figure(go.Image(source=png_data_uri(canvas), hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=[c * (w + gap) + w / 2 for _, c in positions],
            y=[r * (h + gap) + h / 2 for r, _ in positions],
            mode="markers",
            marker={"size": w * scale * 0.9, "opacity": 0, "symbol": "square"},
            text=list(hover),
            hovertemplate="%{text}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(
        title=title or None,
        autosize=True,
        height=canvas.shape[0] * scale + (80 if title else 40),
        margin={"l": 4, "r": 4, "t": 60 if title else 20, "b": 20},
        plot_bgcolor="white",
    )
    return fig


def _layout_image(source: str, xref: str, yref: str, sizey: float = 1) -> dict:
    """A picture placed in a figure's layout (the galleries and hover panels), top-left anchored."""
    return {
        "source": source,
        "xref": xref,
        "yref": yref,
        "x": 0,
        "y": 1,
        "sizex": 1,
        "sizey": sizey,
        "xanchor": "left",
        "yanchor": "top",
        "sizing": "contain",
        "layer": "above",
    }


def _note(text: str, x: float, y: float, size: int, **extra) -> dict:
    """A text annotation in paper coordinates, left-aligned."""
    return {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": x,
        "y": y,
        "showarrow": False,
        "xanchor": "left",
        "align": "left",
        "font": {"size": size},
        **extra,
    }


def pair_strip(samples: np.ndarray, nearest: np.ndarray, gap: int = 2) -> np.ndarray:
    """Rows of (sample | nearest training image | absolute difference), one row per pair, as one image."""
    samples = np.asarray(samples, dtype=np.uint8)
    nearest = np.asarray(nearest, dtype=np.uint8)
    difference = np.abs(samples.astype(np.int16) - nearest.astype(np.int16)).astype(np.uint8)
    triples = np.stack([samples, nearest, difference], axis=1).reshape(-1, *samples.shape[1:])
    return mosaic(triples, columns=3, gap=gap)


@dataclass
class Pair:
    """One sample beside its nearest training image, with what a reader needs to judge it."""

    sample: np.ndarray  # uint8 [28, 28]
    nearest: np.ndarray  # uint8 [28, 28]
    title: str  # "sample 123 · training image #456"
    verdicts: list[tuple[str, str, bool]]  # (criterion, its score and threshold as words, counted as a copy)

    @property
    def distance(self) -> float:
        """Pixel distance between the two images ([0,1] per pixel, Euclidean; exact)."""
        from mnistmem.neighbors import pixel_distances

        return float(pixel_distances(self.sample[None], self.nearest)[0])


#: Width in CSS pixels of one pair strip (three digits and two gaps): each digit drawn about 96 px wide.
PAIR_WIDTH = 288


def pair_gallery_html(pairs: list[Pair], heading: str = "") -> str:
    """Pairs as static HTML: sample | nearest training image | difference, large, with the distance and every
    criterion's verdict beside each. Clicking a pair (or focusing it with the keyboard) enlarges it."""
    cards = []
    for pair in pairs:
        strip = png_data_uri(pair_strip(pair.sample[None], pair.nearest[None]))
        verdicts = "".join(
            f"<li class='{'counted' if counted else 'not-counted'}'><b>{'counted' if counted else 'not counted'}"
            f"</b> by {html.escape(name)} ({html.escape(words)})</li>"
            for name, words, counted in pair.verdicts
        )
        cards.append(
            "<div class='mnistmem-pair' tabindex='0'>"
            f"<img src='{strip}' data-digits='3' width='{PAIR_WIDTH}' height='{PAIR_WIDTH * 28 // 88}' "
            f"alt='{html.escape(pair.title)}: the sample, its nearest training image and their difference'>"
            f"<p class='mnistmem-pair-title'>{html.escape(pair.title)} · pixel distance "
            f"{pair.distance:.2f}</p><ul class='mnistmem-verdicts'>{verdicts}</ul></div>"
        )
    head = f"<p class='mnistmem-pairs-heading'><b>{html.escape(heading)}</b></p>" if heading else ""
    return f"{head}<div class='mnistmem-pair-grid'>{''.join(cards)}</div>"


@dataclass
class CriterionScores:
    """One copy criterion's per-sample scores, for the explorer: which direction counts as a copy, and where."""

    name: str
    scores: np.ndarray  # one per generated sample
    baseline: np.ndarray  # the same criterion on MNIST test digits (independent handwriting)
    copy_if: str  # "below" (distances, ratios) or "above" (similarities)
    threshold: float  # the published or calibrated default
    thresholds: np.ndarray  # the slider's stops


@dataclass
class ModelSamples:
    """A model's generated samples with their nearest training images and indices, and its criteria."""

    name: str
    samples: np.ndarray
    nearest: np.ndarray
    nearest_index: np.ndarray
    criteria: list[CriterionScores]
    scale_note: str = ""


def _flagged(criterion: CriterionScores, scores: np.ndarray, threshold: float) -> np.ndarray:
    return scores <= threshold if criterion.copy_if == "below" else scores >= threshold


def copy_explorer(models: list[ModelSamples], gallery_size: int = 6, bins: int = 40) -> go.Figure:
    """Pick a model and a criterion, move the threshold: the copy count and the gallery follow.

    Left: the distribution of the criterion over the model's samples and over test digits (the baseline),
    with the threshold as a vertical line. Right: the flagged pairs closest to the threshold, i.e. the least
    convincing "copies" at that setting (sample | nearest training image | difference), so a reader sees
    what a given threshold is willing to call a copy.
    """
    fig = go.Figure()
    fig.add_trace(go.Bar(name="generated samples", marker_color=model_colour(models[0].name), opacity=0.85))
    fig.add_trace(go.Bar(name="test digits (baseline)", marker_color=PALETTE[4], opacity=0.85))
    buttons, first_state = [], None
    for model in models:
        for criterion in model.criteria:
            state = _explorer_state(model, criterion, gallery_size, bins)
            buttons.append({"label": f"{model.name} · {criterion.name}", "method": "update", "args": state})
            first_state = first_state or state
    if first_state is None:
        raise ValueError("copy_explorer needs at least one model with one criterion")
    fig.update(data=[{**fig.data[i].to_plotly_json(), **_pick(first_state[0], i)} for i in range(2)])
    fig.update_layout(first_state[1])
    fig.update_layout(
        barmode="overlay",
        height=520,
        # above the histogram, under the count, not inside it: inside, a phone's narrow plot put the legend over
        # the tallest bars and the y axis's top label
        margin={"l": 60, "r": 20, "t": 160, "b": 60},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        xaxis={"domain": [0, 0.55]},
        yaxis={"title": "share of images", "domain": [0, 1]},
        xaxis2={"domain": [0.62, 1], "visible": False, "range": [0, 1], "anchor": "y2"},
        yaxis2={"domain": [0, 1], "visible": False, "range": [0, 1], "anchor": "x2"},
        updatemenus=[{"buttons": buttons, "x": 0, "y": 1.45, "xanchor": "left", "yanchor": "top", "direction": "down"}],
        plot_bgcolor="white",
    )
    return fig


def _pick(trace_update: dict, index: int) -> dict:
    return {key: values[index] for key, values in trace_update.items()}


def _explorer_state(model: ModelSamples, criterion: CriterionScores, gallery_size: int, bins: int):
    """The dropdown's arguments for one (model, criterion): bar data, then layout with its own slider."""
    everything = np.concatenate([criterion.scores, criterion.baseline, criterion.thresholds])
    edges = np.histogram_bin_edges(everything[np.isfinite(everything)], bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    sample_share = np.histogram(criterion.scores, edges)[0] / max(len(criterion.scores), 1)
    baseline_share = np.histogram(criterion.baseline, edges)[0] / max(len(criterion.baseline), 1)
    steps, active = [], 0
    for i, threshold in enumerate(criterion.thresholds):
        steps.append(
            {
                "label": threshold_text(threshold),
                "method": "relayout",
                "args": [_explorer_threshold_layout(model, criterion, float(threshold), gallery_size)],
            }
        )
        if np.isclose(threshold, criterion.threshold):
            active = i
    slider = {
        "active": active,
        "steps": steps,
        "currentvalue": {"prefix": f"{criterion.name}: copy if {criterion.copy_if} "},
        "x": 0,
        "len": 0.55,
        "y": -0.08,
        "yanchor": "top",
        "pad": {"t": 30},
    }
    layout = {
        "sliders": [slider],
        "xaxis.title.text": criterion.name,
        **_explorer_threshold_layout(model, criterion, float(criterion.thresholds[active]), gallery_size),
    }
    data = {
        "x": [centers, centers],
        "y": [sample_share, baseline_share],
        "marker.color": [model_colour(model.name), PALETTE[4]],
        "name": [f"{model.name} samples", "test digits (baseline)"],
    }
    return [data, layout]


def _explorer_threshold_layout(model: ModelSamples, criterion: CriterionScores, threshold: float, gallery_size: int):
    flagged = _flagged(criterion, criterion.scores, threshold)
    base_flagged = _flagged(criterion, criterion.baseline, threshold)
    n, count = len(criterion.scores), int(flagged.sum())
    order = np.argsort(criterion.scores, kind="stable")
    if criterion.copy_if == "above":
        order = order[::-1]  # most copy-like first
    order = order[np.isfinite(criterion.scores[order])]
    borderline = [i for i in order[::-1] if flagged[i]][:gallery_size]
    if borderline:
        caption = "counted:<br>closest calls<br>sample |<br>nearest |<br>difference"
    else:
        # nothing counts: show the most copy-like pairs anyway, so the reader sees what was not counted
        borderline = list(order[:gallery_size])
        caption = "none counted;<br>closest pairs:<br>sample |<br>nearest |<br>difference"
    gallery = png_data_uri(pair_strip(model.samples[borderline], model.nearest[borderline]))
    text = (
        f"<b>{model.name}</b>: <b>{count:,} of {n:,}</b> samples are copies<br>"
        f"({100 * count / max(n, 1):.2f}%; test digits {100 * base_flagged.mean():.2f}%)"
    )
    return {
        "shapes": [
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": threshold,
                "x1": threshold,
                "y0": 0,
                "y1": 1,
                "line": {"color": PALETTE[0], "width": 2, "dash": "dash"},
            }
        ],
        "images": [_layout_image(gallery, "x2", "y2")],
        "annotations": [
            _note(text, 0, 1.16, 13, name="count", yanchor="bottom"),
            _note(caption, 0.62, -0.02, 11, yanchor="top"),
        ],
    }


HOVER_IMAGE_SCRIPT = """
var gd = document.getElementById('{plot_id}');
gd.on('plotly_hover', function (event) {
  var point = event.points[0];
  if (!point || !point.customdata) { return; }
  var uri = Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
  Plotly.relayout(gd, {'images[0].source': uri, 'images[0].visible': true});
});
"""


def hover_pair_scatter(
    x: np.ndarray,
    y: np.ndarray,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    hover: list[str],
    x_title: str,
    y_title: str,
    groups: np.ndarray | None = None,
    group_names: dict | None = None,
) -> tuple[go.Figure, str]:
    """A scatter plot whose points show their image pair (side panel) when hovered.

    Returns the figure and the JavaScript to pass as `post_script` (plotly substitutes `{plot_id}`).
    """
    uris = [png_data_uri(pair_strip(a[None], b[None])) for a, b in pairs]
    fig = go.Figure()
    groups = np.zeros(len(x), dtype=int) if groups is None else np.asarray(groups)
    for k, group in enumerate(np.unique(groups)):
        mask = groups == group
        fig.add_trace(
            go.Scatter(
                x=np.asarray(x)[mask],
                y=np.asarray(y)[mask],
                mode="markers",
                name=(group_names or {}).get(group, str(group)),
                marker={
                    "color": _group_colour((group_names or {}).get(group, str(group)), k),
                    "size": 7,
                    "symbol": ["circle", "diamond", "square"][k % 3],
                },
                customdata=[u for u, m in zip(uris, mask, strict=True) if m],
                text=[h for h, m in zip(hover, mask, strict=True) if m],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis={"title": x_title, "domain": [0, 0.7]},
        yaxis={"title": y_title},
        xaxis2={"domain": [0.75, 1], "visible": False, "range": [0, 1], "anchor": "y2"},
        yaxis2={"domain": [0.3, 1], "visible": False, "range": [0, 1], "anchor": "x2"},
        images=[_layout_image(uris[0] if uris else "", "x2", "y2")],
        annotations=[
            _note(
                "hover a point: its sample | nearest training image | difference appear on the right",
                0,
                1.02,
                11,
                yanchor="bottom",
            )
        ],
        height=440,
        plot_bgcolor="white",
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        showlegend=True,
        legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top"},
    )
    fig.update_layout(margin={"b": 130})
    return fig, HOVER_IMAGE_SCRIPT


def _group_colour(name: str, k: int) -> str:
    try:
        return model_colour(name)
    except KeyError:
        return PALETTE[k % len(PALETTE)]


def slider_gallery(states: list[tuple[str, str, str]], caption: str) -> go.Figure:
    """A slider over states (label, image data URI, text): each stop shows its image and text."""
    if not states:
        raise ValueError("slider_gallery needs at least one state")

    def layout_for(uri: str, text: str) -> dict:
        return {
            "images": [_layout_image(uri, "paper", "paper", sizey=0.85)],
            "annotations": [
                _note(wrap_label(text), 0, 1.01, 14, yanchor="bottom"),
                _note(wrap_label(caption), 0, 0.14, 11, yanchor="top"),
            ],
        }

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="markers", marker={"opacity": 0}, hoverinfo="skip"))
    steps = [{"label": label, "method": "relayout", "args": [layout_for(uri, text)]} for label, uri, text in states]
    fig.update_layout(layout_for(*states[0][1:]))
    fig.update_layout(
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "training set: "}, "pad": {"t": 20}}],
        xaxis={"visible": False, "range": [0, 1]},
        yaxis={"visible": False, "range": [0, 1]},
        height=720,
        plot_bgcolor="white",
        margin={"l": 20, "r": 20, "t": 130, "b": 40},
        showlegend=False,
    )
    return fig
