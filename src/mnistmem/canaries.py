"""Canaries: synthetic stand-ins for protected works, planted in a training set a chosen number of times.

A canary is a glyph such as ©, ®, § or ¶ rendered white on black at 28×28 with DejaVu Sans, the font that
ships inside matplotlib (so every machine renders the same bytes for the same matplotlib/Pillow versions).
No MNIST digit looks like one, so a generated image close to a canary can only have come from the canary
copies in the training set: duplicating one canary 1, 10, 100 or 1000 times in one run measures how
duplication drives copying.

Canary rows carry the label `CANARY_LABEL` (10, "not a digit"); a class-conditional model therefore has
11 classes, and "draw a canary" is a request for class 10.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

#: Label of every canary row: 10 = "not a digit" (digits are 0-9).
CANARY_LABEL = 10
#: Glyphs offered by name; any single character DejaVu Sans can draw is accepted too.
GLYPHS = {"copyright": "©", "registered": "®", "section": "§", "pilcrow": "¶", "trademark": "™"}
IMAGE_SIZE = 28


def font_path() -> Path:
    """DejaVuSans.ttf as shipped by matplotlib."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; canaries need matplotlib's DejaVuSans.ttf (pip install matplotlib)")
    return path


def resolve_glyph(glyph: str) -> str:
    """A glyph name from `GLYPHS` or a single character, returned as the character."""
    char = GLYPHS.get(glyph, glyph)
    if len(char) != 1:
        raise ValueError(f"canary glyph must be one character or one of {sorted(GLYPHS)}, got {glyph!r}")
    return char


@lru_cache(maxsize=64)
def _render(char: str, size: int) -> bytes:
    """MNIST's own recipe: fit the ink in a 20×20 box (aspect kept, antialiased) and centre it in 28×28."""
    from PIL import Image, ImageDraw, ImageFont

    big = 256
    font = ImageFont.truetype(str(font_path()), big)
    image = Image.new("L", (2 * big, 2 * big), 0)
    ImageDraw.Draw(image).text((big // 2, big // 2), char, fill=255, font=font)
    box = image.getbbox()
    if box is None:
        raise ValueError(f"DejaVu Sans draws nothing for canary glyph {char!r}")
    ink = image.crop(box)
    fit = round(size * 20 / 28)
    scale = fit / max(ink.size)
    ink = ink.resize((max(1, round(ink.width * scale)), max(1, round(ink.height * scale))), Image.Resampling.LANCZOS)
    out = Image.new("L", (size, size), 0)
    out.paste(ink, ((size - ink.width) // 2, (size - ink.height) // 2))
    return out.tobytes()


def render_canary(glyph: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """The canary image for `glyph` (name or character): uint8 [size, size], white ink on black."""
    char = resolve_glyph(glyph)
    return np.frombuffer(_render(char, size), dtype=np.uint8).reshape(size, size).copy()


def render_canaries(glyphs: list[str] | tuple[str, ...]) -> np.ndarray:
    """Several canaries stacked: uint8 [K, 28, 28]."""
    if not glyphs:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    return np.stack([render_canary(g) for g in glyphs])
