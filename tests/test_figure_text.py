"""Chart text and slider stops a reader can use: labels wrap to fit a phone, stops sit at round values, and
the pair gallery carries a verdict for every definition."""

from __future__ import annotations

import re

import numpy as np

from mnistmem.book import figures
from mnistmem.book.common import round_stop, slider_stops


def test_long_labels_wrap_and_short_ones_stay():
    assert figures.wrap_label("GAN samples") == "GAN samples"
    wrapped = figures.wrap_label("Diffusion, 100 digits: nearest image among its own training digits")
    assert all(len(line) <= figures.WRAP_CHARACTERS for line in wrapped.split("<br>"))
    assert wrapped.replace("<br>", " ") == "Diffusion, 100 digits: nearest image among its own training digits"


def test_slider_stops_are_round():
    assert [round_stop(v, "below") for v in (2.98, 0.7512, 4.04, 0.0123)] == [3.0, 0.75, 4.0, 0.012]
    assert round_stop(0.99974, "above") == 1 - 0.00026  # near 1, the distance below 1 is what is rounded
    stops = slider_stops(np.random.default_rng(0).gamma(5, 1, 1000), 1.004, "below")
    assert 1.004 in stops and all(len(f"{s:g}".replace(".", "").strip("0")) <= 4 for s in stops if s != 1.004)


def test_pair_gallery_shows_distance_and_each_verdict():
    digit = np.zeros((28, 28), np.uint8)
    pair = figures.Pair(
        digit,
        digit,
        "sample 1 · training image #2",
        [("a", "0; a copy if below 1", True), ("b", "0.2; a copy if above 0.9", False)],
    )
    page = figures.pair_gallery_html([pair])
    assert "pixel distance 0.00" in page and "counted</b> by a" in page and "not counted</b> by b" in page
    assert re.search(r"tabindex='0'", page) and "data-digits='3'" in page and "alt='sample 1" in page
