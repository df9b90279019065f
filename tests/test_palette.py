"""Figures stay readable in greyscale: the palette's colours differ in lightness, not only in hue."""

from __future__ import annotations

import itertools

from mnistmem.book.figures import MODEL_COLOURS, PALETTE, model_colour


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.x) of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_palette_colours_are_distinct_in_greyscale():
    for a, b in itertools.combinations(PALETTE, 2):
        assert contrast(a, b) >= 1.25, f"{a} and {b} look alike in greyscale (contrast {contrast(a, b):.2f})"


def test_palette_is_readable_on_white():
    for colour in PALETTE[:4]:
        assert contrast(colour, "#ffffff") >= 1.5, f"{colour} is too pale on a white page"


def test_each_model_has_its_own_colour_distinct_in_greyscale():
    for a, b in itertools.combinations(MODEL_COLOURS.values(), 2):
        assert contrast(a, b) >= 1.25, f"{a} and {b} look alike in greyscale (contrast {contrast(a, b):.2f})"
    assert model_colour("diffusion_100") == model_colour("Diffusion, 100 digits") == MODEL_COLOURS["diffusion"]
    assert model_colour("GAN") == MODEL_COLOURS["gan"]
