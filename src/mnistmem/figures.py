"""Plotly figures for the book. Each function takes arrays and returns a `plotly.graph_objects.Figure`.

Digits are drawn as one PNG mosaic per figure (compact, sharp at any zoom) with an invisible marker over
each digit that carries its hover text, so a page stays small even with hundreds of digits.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

#: Colours that stay distinct in greyscale (different lightness), for lines and markers.
PALETTE = ["#1b1b1b", "#d95f02", "#7570b3", "#66a61e", "#a6a6a6"]


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
        margin={"l": 20, "r": 20, "t": 60 if title else 20, "b": 20},
        plot_bgcolor="white",
    )
    return fig
