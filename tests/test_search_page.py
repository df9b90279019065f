"""The "Was this digit in the training set?" page (chapters/02b): its Python side, and the page in Chromium.

Unit tests (fast): the MNIST centring, the exported thresholds and calibration, the served data files.
Browser tests (the built book, headless Chromium): strokes drawn with the mouse and the keyboard are centred
exactly as `search_page.centre_like_mnist` centres the same canvas; 50 test digits and 20 generated samples
searched through the page's controls give exactly `neighbors.knn`'s neighbours, order and distances, and the
criteria's scores of `mnistmem.copies` within the tolerances below; the reverse look-up gives the exact
closest samples and the committed tables' credit counts; nothing leaves the machine, the console stays clean,
the page weighs at most 3 MB before use, and works at 390 px. Screenshots go to book/_build/screenshots.

`MNISTMEM_SEARCH_SITE=<folder>` points the browser tests at another build of the page (with the book's
`chapters/` and `_static/` layout) instead of building the whole book; unset, they use the fresh book build.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mnistmem import copies, data
from mnistmem.book import search_page
from mnistmem.copies import CRITERIA

PAGE = "chapters/02b_search_the_training_set.html"
#: stated tolerances of the page's criteria against mnistmem.copies (pixel distance and ratio: exact)
TOLERANCE = {"l2": 0.0, "nn_ratio": 0.0, "calibrated_l2": 1e-12, "ssim": 1e-9}
MAX_PAGE_BYTES = 3_000_000


# --------------------------------------------------------------------------------------------- unit tests
def _enlarged(image: np.ndarray, factor: int) -> np.ndarray:
    return np.kron(image, np.ones((factor, factor), np.uint8))


def test_mnist_digits_are_fixed_points_of_the_centring():
    """MNIST's own digits, enlarged, come back unchanged: the centring is MNIST's (box 20, mass at (14, 14))."""
    train = data.load_mnist("train")[0]
    chosen = np.random.default_rng(0).choice(len(train), 300, replace=False)
    unchanged = [np.array_equal(search_page.centre_like_mnist(_enlarged(train[i], 10)), train[i]) for i in chosen]
    assert np.mean(unchanged) >= 0.99, f"only {np.mean(unchanged):.1%} of MNIST digits survive the centring"


def test_centring_ignores_position_and_scale_and_keeps_the_box():
    train = data.load_mnist("train")[0]
    digit = train[7]
    reference = search_page.centre_like_mnist(_enlarged(digit, 4))
    corner = np.zeros((280, 280), np.uint8)
    corner[: 28 * 3, -28 * 3 :] = _enlarged(digit, 3)
    assert np.array_equal(search_page.centre_like_mnist(corner), reference)
    assert np.array_equal(search_page.centre_like_mnist(_enlarged(digit, 7)), reference)
    rows, cols = np.flatnonzero(reference.any(1)), np.flatnonzero(reference.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20
    v = reference.astype(np.float64)
    com = ((v.sum(1) * np.arange(28)).sum() / v.sum(), (v.sum(0) * np.arange(28)).sum() / v.sum())
    assert all(abs(c - 14) <= 0.5 for c in com), com
    assert not search_page.centre_like_mnist(np.zeros((50, 60), np.uint8)).any()
    dot = np.zeros((100, 100), np.uint8)
    dot[3, 90] = 255  # a single pixel becomes a full 20 × 20 box; its centre 9.5 goes to 14 (4.5, half up: 5)
    out = search_page.centre_like_mnist(dot)
    assert out.sum() == 400 * 255 and out[5:25, 5:25].all()
    with pytest.raises(ValueError, match="uint8"):
        search_page.centre_like_mnist(np.zeros((5, 5), np.float32))


def test_criteria_export_reads_the_package_and_the_calibration():
    from mnistmem import results

    calibration = results.load("calibration")
    rows = search_page.criteria_export(calibration)
    assert [r["name"] for r in rows] == list(search_page.PAGE_CRITERIA)
    held_out = calibration.summary("baseline")["held_out"]
    for row in rows:
        c = CRITERIA[row["name"]]
        assert (row["threshold"], row["direction"], row["inclusive"]) == (c.default_threshold, c.direction, c.inclusive)
        assert row["calibration"] == {
            k: held_out[row["name"]]["false_alarms_report_half"][k] for k in ("count", "n", "rate", "ci_low", "ci_high")
        }
    assert search_page.SEARCH_K >= copies.CARLINI_N and search_page.SHOWN_K >= 10


def test_served_files_hold_the_training_set_and_the_committed_tables(tmp_path):
    from mnistmem import results, tables
    from mnistmem.results import TABLE_FILE

    main = results.load("main")
    prepared = search_page.prepare_static(main, cache_root=tmp_path)
    read = lambda name: gzip.decompress((prepared.folder / name).read_bytes())  # noqa: E731
    train, labels = data.load_mnist("train")
    assert read("train-images.u8.gz") == train.tobytes()
    assert np.array_equal(np.frombuffer(read("train-labels.u8.gz"), np.uint8), labels)
    for model in prepared.models:
        table = tables.load_table(main.path(f"score_{model['tag']}", TABLE_FILE))
        nn1 = np.frombuffer(read(f"samples-{model['tag']}-nn1.u16le.gz"), "<u2")
        assert np.array_equal(nn1, table.nn_index[:, 0]) and model["count"] == len(table)
    again = search_page.prepare_static(main, cache_root=tmp_path)  # cached: the same folder, not rewritten
    assert again.folder == prepared.folder and again.files == prepared.files


# --------------------------------------------------------------------------------------------- the page
@pytest.fixture(scope="module")
def site(request) -> Path:
    folder = os.environ.get("MNISTMEM_SEARCH_SITE")
    return Path(folder) if folder else request.getfixturevalue("built_book")


@pytest.fixture(scope="module")
def browser(site):
    pytest.importorskip("playwright.sync_api")
    from .browser import chromium_on

    with chromium_on(site) as (chromium, base_url):
        yield chromium, base_url, site


class Tool:
    """The page open in Chromium, with its log, driven like a reader drives it."""

    def __init__(self, browser, width: int = 1280) -> None:
        from .browser import PageLog

        chromium, base_url, self.site = browser
        self.page = chromium.new_page(viewport={"width": width, "height": 900})
        self.log = PageLog(base_url)
        self.log.attach(self.page)
        self.bytes: dict[str, int] = {}
        self.times: list[float] = []  # each search's time as the page measured it (ms)
        self.page.on("response", self._count)
        self.page.goto(f"{base_url}/{PAGE}", wait_until="load")
        self.page.wait_for_function("document.getElementById('mnistmem-search')?.dataset.done === '0'")

    def _count(self, response) -> None:
        try:
            self.bytes[response.url] = len(response.body())
        except Exception:  # redirects and aborted requests have no body
            self.bytes.setdefault(response.url, 0)

    def done(self) -> int:
        return int(self.page.locator("#mnistmem-search").get_attribute("data-done"))

    def _press(self, button: str) -> None:
        before = self.done()
        self.page.locator(button).click()
        self.page.wait_for_function(
            f"Number(document.getElementById('mnistmem-search').dataset.done) > {before}", timeout=120_000
        )
        for status in self.page.locator(".ms-status").all_text_contents():
            assert "failed" not in status, status

    def search(self, button: str) -> dict:
        self._press(button)
        out = self.page.locator("#ms-result")
        self.times.append(float(out.get_attribute("data-ms")))
        return {k: json.loads(out.get_attribute(f"data-{k}")) for k in ("index", "d2", "distance", "scores", "query")}

    def test_digit(self, i: int) -> dict:
        self.page.fill("#ms-test", str(i))
        return self.search("#ms-test-go")

    def sample(self, model: str, i: int) -> dict:
        self.page.select_option("#ms-model", model)
        self.page.fill("#ms-sample", str(i))
        return self.search("#ms-sample-go")

    def reverse(self, j: int) -> dict:
        self.page.fill("#ms-train", str(j))
        self._press("#ms-train-go")
        return json.loads(self.page.locator("#ms-reverse-out").get_attribute("data-result"))

    def canvas_grey(self) -> np.ndarray:
        grey = self.page.evaluate("Array.from(window.mnistmemSearch.canvasGrey())")
        size = int(np.sqrt(len(grey)))
        return np.array(grey, np.uint8).reshape(size, size)

    def clean(self) -> None:
        assert self.log.errors == [], f"console errors {self.log.errors}"
        assert self.log.outside == [], f"requests leaving the machine {self.log.outside}"
        assert self.log.failed == [], f"failed requests {self.log.failed}"


@pytest.fixture(scope="module")
def tool(browser):
    t = Tool(browser)
    yield t
    t.page.close()


def _train():
    return data.load_mnist("train")


def _check_against_python(found: list[dict], queries: np.ndarray, what: list[str]) -> None:
    """Each page answer equals knn's (indices, order, squared and float distances) and the criteria's scores
    equal mnistmem.copies' within TOLERANCE, with the same verdicts."""
    from mnistmem.neighbors import knn_squared

    train = _train()[0]
    d2, index = knn_squared(queries, train, k=search_page.SEARCH_K)
    distance = np.sqrt(d2.astype(np.float64)) / 255.0
    expected = {
        "l2": copies.l2_score(distance),
        "nn_ratio": copies.nn_ratio_score(distance),
        "calibrated_l2": copies.calibrated_l2_score(distance),
        "ssim": copies.ssim_score(queries, train, index[:, 0]),
    }
    for q, page in enumerate(found):
        assert page["index"] == index[q].tolist(), f"{what[q]}: neighbours differ"
        assert page["d2"] == d2[q].tolist(), f"{what[q]}: squared distances differ"
        assert [float(x) for x in page["distance"]] == distance[q].tolist(), f"{what[q]}: distances differ"
        for name, tolerance in TOLERANCE.items():
            got, want = float(page["scores"][name]), float(expected[name][q])
            assert abs(got - want) <= tolerance * max(1.0, abs(want)), f"{what[q]} {name}: {got!r} vs {want!r}"
            c = CRITERIA[name]
            if abs(want - c.default_threshold) > tolerance:
                assert c.flag(np.array([got]))[0] == c.flag(np.array([want]))[0]


@pytest.mark.browser
@pytest.mark.book
def test_page_weighs_little_before_use_and_loads_data_only_when_asked(browser):
    tool = Tool(browser)
    tool.page.wait_for_timeout(500)
    total = sum(tool.bytes.values())
    print(f"\npage weight before use: {total:,} bytes in {len(tool.bytes)} files")
    assert total <= MAX_PAGE_BYTES, f"the page loads {total:,} bytes before use: {sorted(tool.bytes.items())}"
    assert not [u for u in tool.bytes if "/_static/search/" in u], "the training set loaded with the page"
    tool.test_digit(3)
    loaded = [u for u in tool.bytes if "/_static/search/" in u]
    assert any(u.endswith("train-images.u8.gz") for u in loaded) and not any("samples-" in u for u in loaded)
    tool.clean()
    tool.page.close()


@pytest.mark.browser
@pytest.mark.book
def test_controls_are_labelled_and_reachable_by_keyboard(tool):
    unlabeled = tool.page.evaluate(
        """Array.from(document.querySelectorAll('#mnistmem-search input, #mnistmem-search select'))
             .filter(e => !document.querySelector(`label[for="${e.id}"]`) && !e.getAttribute('aria-label'))
             .map(e => e.id)"""
    )
    assert unlabeled == []
    assert tool.page.evaluate(
        "Array.from(document.querySelectorAll('#mnistmem-search button')).every(b => b.textContent.trim().length > 3)"
    )
    assert tool.page.locator("#ms-canvas").get_attribute("tabindex") == "0"
    assert tool.page.locator("#ms-status").get_attribute("aria-live") == "polite"


@pytest.mark.browser
@pytest.mark.book
def test_drawn_strokes_are_centred_like_python_and_searched_exactly(tool):
    """Mouse strokes (a 7, an off-centre small 0) and keyboard strokes (an L): the page's centred image equals
    `centre_like_mnist` of the page's own canvas, and its neighbours equal knn's."""
    page = tool.page
    page.locator("#ms-canvas").scroll_into_view_if_needed()
    box = page.locator("#ms-canvas").bounding_box()
    scale = box["width"] / search_page.CANVAS_SIZE
    to_screen = lambda x, y: (box["x"] + x * scale, box["y"] + y * scale)  # noqa: E731
    drawings = {
        "a seven": [[(70, 60), (210, 60), (120, 230)], [(100, 150), (180, 150)]],
        "a small 0 off centre": [[(40 + 25 * np.cos(t), 60 + 35 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
        "a dot": [[(200, 220)]],
    }
    queries, found, what = [], [], []
    for name, strokes in drawings.items():
        page.locator("#ms-clear").click()
        for points in strokes:
            page.mouse.move(*to_screen(*points[0]))
            page.mouse.down()
            for p in points[1:]:
                page.mouse.move(*to_screen(*p), steps=8)
            page.mouse.up()
        result = tool.search("#ms-draw-go")
        grey = tool.canvas_grey()
        assert grey.any(), f"{name}: nothing was drawn"
        python = search_page.centre_like_mnist(grey)
        assert result["query"] == python.ravel().tolist(), f"{name}: the page centred it differently"
        queries.append(python)
        found.append(result)
        what.append(name)
    page.locator("#ms-clear").click()
    canvas = page.locator("#ms-canvas")
    canvas.focus()
    for key in ["ArrowUp"] * 6 + ["ArrowLeft"] * 5 + ["Space"] + ["ArrowDown"] * 14 + ["ArrowRight"] * 9:
        canvas.press(key)
    before = tool.done()
    canvas.press("Enter")
    page.wait_for_function(f"Number(document.getElementById('mnistmem-search').dataset.done) > {before}")
    out = page.locator("#ms-result")
    result = {k: json.loads(out.get_attribute(f"data-{k}")) for k in ("index", "d2", "distance", "scores", "query")}
    python = search_page.centre_like_mnist(tool.canvas_grey())
    assert python.any() and result["query"] == python.ravel().tolist(), "keyboard drawing centred differently"
    _check_against_python([*found, result], np.stack([*queries, python]), [*what, "a keyboard L"])
    tool.clean()


@pytest.mark.browser
@pytest.mark.book
def test_the_page_centres_any_canvas_as_python_does(tool):
    """Random grey canvases of many shapes (tall, wide, tiny, faint, touching the edges): the page's own
    `centreLikeMnist` gives the same bytes as `centre_like_mnist`."""
    rng = np.random.default_rng(28)
    canvases = []
    for n in range(60):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        canvas = np.zeros((h, w), np.uint8)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0, h)) + 1, int(rng.integers(x0, w)) + 1
        top = 3 if n % 10 == 0 else 256  # some so faint that the 20 × 20 box rounds to black
        canvas[y0:y1, x0:x1] = rng.integers(0, top, (y1 - y0, x1 - x0)) * (rng.random((y1 - y0, x1 - x0)) < 0.3)
        canvases.append(canvas)
    page_out = tool.page.evaluate(
        """cs => cs.map(c => Array.from(window.mnistmemSearch.centreLikeMnist(Uint8Array.from(c.px), c.h, c.w)))""",
        [{"px": c.ravel().tolist(), "h": c.shape[0], "w": c.shape[1]} for c in canvases],
    )
    for n, (canvas, got) in enumerate(zip(canvases, page_out, strict=True)):
        assert got == search_page.centre_like_mnist(canvas).ravel().tolist(), f"canvas {n} {canvas.shape}"


@pytest.mark.browser
@pytest.mark.book
def test_uploaded_images_are_searched_as_drawn(tool, tmp_path):
    """A 28 × 28 PNG is searched as it is; a larger one with dark ink on white is inverted, drawn on the canvas
    and centred: the page's query equals `centre_like_mnist` of the canvas it shows."""
    from PIL import Image

    digit = data.load_mnist("test")[0][5]
    small, large = tmp_path / "digit.png", tmp_path / "scan.png"
    Image.fromarray(digit).save(small)
    Image.fromarray(255 - _enlarged(digit, 5)).save(large)
    before = tool.done()
    tool.page.set_input_files("#ms-file", str(small))
    tool.page.wait_for_function(f"Number(document.getElementById('mnistmem-search').dataset.done) > {before}")
    out = tool.page.locator("#ms-result")
    assert json.loads(out.get_attribute("data-query")) == digit.ravel().tolist()
    assert json.loads(out.get_attribute("data-index")) == tool.test_digit(5)["index"]
    before = tool.done()
    tool.page.set_input_files("#ms-file", str(large))
    tool.page.wait_for_function(f"Number(document.getElementById('mnistmem-search').dataset.done) > {before}")
    query = json.loads(out.get_attribute("data-query"))
    assert query == search_page.centre_like_mnist(tool.canvas_grey()).ravel().tolist()
    tool.clean()


@pytest.mark.browser
@pytest.mark.book
def test_fifty_test_digits_and_twenty_samples_match_python_exactly(tool):
    from mnistmem import results, tables
    from mnistmem.results import SAMPLES_FILE, TABLE_FILE, load_samples

    test = data.load_mnist("test")[0]
    chosen = [0, *np.random.default_rng(16).choice(len(test), 49, replace=False).tolist()]
    found = [tool.test_digit(i) for i in chosen]
    for i, page in zip(chosen, found, strict=True):
        assert page["query"] == test[i].ravel().tolist()
    _check_against_python(found, test[chosen], [f"test digit {i}" for i in chosen])

    main = results.load("main")
    models = [m["tag"] for m in search_page.page_config(results.load("calibration"), main)["models"]]
    assert models, "no generated samples on the page"
    queries, found, what = [], [], []
    rng = np.random.default_rng(20)
    for n in range(20):
        tag = models[n % len(models)]
        images, _ = load_samples(main.path(f"sample_{tag}", SAMPLES_FILE))
        table = tables.load_table(main.path(f"score_{tag}", TABLE_FILE))
        i = int(rng.integers(len(images)))
        page = tool.sample(tag, i)
        assert page["query"] == images[i].ravel().tolist()
        stored = table.nn_index.shape[1]  # the committed table agrees too (it stores the first neighbours)
        assert page["index"][:stored] == table.nn_index[i].tolist()
        assert [float(x) for x in page["distance"][:stored]] == table.nn_distance[i].tolist()
        for name, tolerance in TOLERANCE.items():
            want = float(table.scores[name][i])
            assert abs(float(page["scores"][name]) - want) <= tolerance * max(1.0, abs(want)), (tag, i, name)
        queries.append(images[i])
        found.append(page)
        what.append(f"{tag} sample {i}")
    _check_against_python(found, np.stack(queries), what)
    status = tool.page.locator("#ms-status").text_content()
    assert "ms (measured in your browser" in status, status
    times = np.array(tool.times[-70:])
    print(
        f"\none search of all 60,000 training digits in headless Chromium, {len(times)} searches: median "
        f"{np.median(times):.0f} ms, fastest {times.min():.0f} ms, slowest {times.max():.0f} ms"
    )
    tool.clean()


@pytest.mark.browser
@pytest.mark.book
def test_reverse_lookup_gives_the_closest_samples_and_the_credit_counts(tool):
    from mnistmem import results, tables
    from mnistmem.neighbors import knn_squared
    from mnistmem.results import SAMPLES_FILE, TABLE_FILE, load_samples

    main = results.load("main")
    tags = [t for t in search_page.MODELS if f"sample_{t}" in main.manifest["stages"]]
    nn1 = {t: tables.load_table(main.path(f"score_{t}", TABLE_FILE)).nn_index[:, 0] for t in tags}
    images = {t: load_samples(main.path(f"sample_{t}", SAMPLES_FILE))[0] for t in tags}
    most = int(np.bincount(nn1[tags[-1]]).argmax())
    train = _train()[0]
    for j in (0, 59_999, most):  # the most credited last: its counts are checked on screen below
        page = tool.reverse(j)
        assert page["index"] == j and [m["tag"] for m in page["models"]] == tags
        for m in page["models"]:
            d2, index = knn_squared(train[j : j + 1], images[m["tag"]], k=search_page.REVERSE_K)
            assert m["index"] == index[0].tolist() and m["d2"] == d2[0].tolist(), (j, m["tag"])
            assert m["credits"] == np.flatnonzero(nn1[m["tag"]] == j).tolist(), (j, m["tag"])
    credit = tool.page.locator(f'.ms-credit[data-model="{tags[-1]}"]')
    assert int(credit.get_attribute("data-credits")) == int((nn1[tags[-1]] == most).sum()) > 0
    tool.clean()


@pytest.mark.browser
@pytest.mark.book
@pytest.mark.parametrize("width", [1280, 390])
def test_screenshot_after_a_query_and_no_overflow(browser, width):
    tool = Tool(browser, width)
    tool.test_digit(0)
    tool.reverse(0)
    page = tool.page
    overflow = page.evaluate(
        """Array.from(document.querySelectorAll('#mnistmem-search *'))
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .filter(e => !e.parentElement?.closest('.ms-scroll'))
             .map(e => e.tagName + '#' + e.id + '.' + e.className)"""
    )
    assert overflow == [], f"at {width} px these stick out of the window: {overflow[:10]}"
    shots = tool.site.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the theme's sticky header then sits at the top of the picture
    page.screenshot(path=str(shots / f"search-tool-{width}px.png"), full_page=True)
    tool.clean()
    page.close()
