"""Canaries: synthetic stand-ins for protected works, planted in a training set a chosen number of times.

A canary is a glyph such as ©, ®, § or ¶ rendered white on black at 28×28 with DejaVu Sans, the font that
ships inside matplotlib (so every machine renders the same bytes for the same matplotlib/Pillow versions).
No MNIST digit looks like one, so a generated image close to a canary can only have come from the canary
copies in the training set: duplicating one canary 1, 10, 100 or 1000 times in one run measures how
duplication drives copying.

A glyph says *which* work is planted, so planting © once and ¶ a thousand times would confound the glyph with
its count. Stroke canaries remove that confound: `stroke:K` is a random pen stroke (a smooth curve through a
few random points, drawn with a fixed pen width), one family of shapes of similar complexity, so several of
them can be planted at each count and the curve averaged over canaries. `unlike_digits` picks strokes that
lie farther from every MNIST digit, and from each other, than a typical digit lies from its nearest training
digit, so a sample close to one can only have come from that canary.

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


STROKE_PREFIX = "stroke:"
#: A stroke canary's pen: control points of one smooth curve, and the pen width in 28-pixel units (an MNIST
#: stroke is about 2 to 3 pixels wide).
STROKE_POINTS = 5
STROKE_WIDTH = 2.5


def stroke_seed(glyph: str) -> int | None:
    """K for a stroke canary "stroke:K" (K a non-negative integer), None for a glyph."""
    if not glyph.startswith(STROKE_PREFIX):
        return None
    seed = glyph[len(STROKE_PREFIX) :]
    if not seed.isdigit():
        raise ValueError(f"a stroke canary is 'stroke:K' with K a non-negative integer, got {glyph!r}")
    return int(seed)


def resolve_glyph(glyph: str) -> str:
    """A glyph name from `GLYPHS` or a single character, returned as the character; a stroke canary
    ("stroke:K") is returned as it is."""
    if stroke_seed(glyph) is not None:
        return glyph
    char = GLYPHS.get(glyph, glyph)
    if len(char) != 1:
        raise ValueError(f"canary glyph must be one character, one of {sorted(GLYPHS)} or 'stroke:K', got {glyph!r}")
    return char


#: The 21 stroke canaries the duplication experiment plants (three per count for seven counts): the first 21
#: seeds that `unlike_digits` keeps with the bar at the 90th percentile of the 10,000 test digits' distances
#: to their nearest training digit (5.67; seed 15 lies 5.43 from a training digit and is left out). Made by
#: `unlike_digits(21, bar, training digits)`; tests/test_dataspec.py checks the property on every run.
UNLIKE_DIGIT_STROKES = tuple(f"stroke:{k}" for k in (*range(15), *range(16, 22)))
UNLIKE_DIGIT_QUANTILE = 0.9


def _fit(image, size: int) -> bytes:
    """MNIST's own recipe: fit the ink in a 20×20 box (aspect kept, antialiased) and centre it in size×size."""
    from PIL import Image

    box = image.getbbox()
    ink = image.crop(box)
    fit = round(size * 20 / 28)
    scale = fit / max(ink.size)
    ink = ink.resize((max(1, round(ink.width * scale)), max(1, round(ink.height * scale))), Image.Resampling.LANCZOS)
    out = Image.new("L", (size, size), 0)
    out.paste(ink, ((size - ink.width) // 2, (size - ink.height) // 2))
    return out.tobytes()


@lru_cache(maxsize=256)
def _render_stroke(seed: int, size: int) -> bytes:
    """One smooth pen stroke: a Catmull-Rom curve through `STROKE_POINTS` points drawn uniformly in the unit
    square (numpy's PCG64 from `seed`), drawn at 10× with round pen ends, then fitted as MNIST fits a digit."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    points = rng.uniform(0.0, 1.0, size=(STROKE_POINTS, 2))
    padded = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, 24)[:, None]
    curve = []
    for k in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[k - 1 : k + 3]
        curve.append(
            0.5
            * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    path = np.concatenate(curve)
    big = 10 * size
    # the ink's longer side is fitted to 20 of 28 pixels, so the pen is drawn at the width it should have then
    extent = float(np.ptp(path, axis=0).max()) or 1.0
    span = 0.8 * big
    width = max(1, round(STROKE_WIDTH * span * extent / (20 * size / 28)))
    xy = [(float(x), float(y)) for x, y in (0.1 * big + span * path)]
    image = Image.new("L", (big, big), 0)
    ImageDraw.Draw(image).line(xy, fill=255, width=width, joint="curve")
    for x, y in (xy[0], xy[-1]):
        r = width / 2
        ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=255)
    return _fit(image, size)


@lru_cache(maxsize=64)
def _render(char: str, size: int) -> bytes:
    """MNIST's own recipe: fit the ink in a 20×20 box (aspect kept, antialiased) and centre it in 28×28."""
    from PIL import Image, ImageDraw, ImageFont

    big = 256
    font = ImageFont.truetype(str(font_path()), big)
    image = Image.new("L", (2 * big, 2 * big), 0)
    ImageDraw.Draw(image).text((big // 2, big // 2), char, fill=255, font=font)
    if image.getbbox() is None:
        raise ValueError(f"DejaVu Sans draws nothing for canary glyph {char!r}")
    return _fit(image, size)


def render_canary(glyph: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """The canary image for `glyph` (name or character): uint8 [size, size], white ink on black."""
    char = resolve_glyph(glyph)
    seed = stroke_seed(char)
    raw = _render(char, size) if seed is None else _render_stroke(seed, size)
    return np.frombuffer(raw, dtype=np.uint8).reshape(size, size).copy()


def render_canaries(glyphs: list[str] | tuple[str, ...]) -> np.ndarray:
    """Several canaries stacked: uint8 [K, 28, 28]."""
    if not glyphs:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    return np.stack([render_canary(g) for g in glyphs])


def unlike_digits(count: int, bar: float, train: np.ndarray, first: int = 0, tries: int = 2000) -> list[str]:
    """The first `count` stroke canaries (seeds `first`, `first + 1`, ...) that lie farther than `bar` (pixel
    distance in [0, 1] units) from every image of `train` and from every canary chosen before them. Why: a
    sample close to such a canary resembles no digit and no other canary, so counting it as a reproduction of
    that canary is unambiguous. Raises ValueError after `tries` seeds without enough of them."""
    from mnistmem.neighbors import knn

    chosen: list[str] = []
    images: list[np.ndarray] = []
    for seed in range(first, first + tries):
        name = f"{STROKE_PREFIX}{seed}"
        image = render_canary(name)
        if knn(image[None], train, k=1, progress=False)[0][0, 0] <= bar:
            continue
        if images and knn(image[None], np.stack(images), k=1, progress=False)[0][0, 0] <= bar:
            continue
        chosen.append(name)
        images.append(image)
        if len(chosen) == count:
            return chosen
    raise ValueError(
        f"only {len(chosen)} of {count} stroke canaries among seeds {first}..{first + tries - 1} lie "
        f"farther than {bar} from every digit and from each other; lower the bar or try more seeds"
    )
