"""The built book as a reader sees it: every page in headless Chromium.

Fails on a console error, a request that leaves the machine, a missing file, an undrawn plotly figure, a
dead internal link, an image without alt text, or a Colab/Binder link to a notebook the repo does not have.
Screenshots of every page are saved under book/_build/screenshots.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from .browser import PageLog, chromium_on

pytestmark = [pytest.mark.browser, pytest.mark.book]

playwright = pytest.importorskip("playwright.sync_api")


def content_pages(html_dir: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(p for p in html_dir.rglob("*.html") if p.name not in skip and "_static" not in p.parts)


@pytest.fixture(scope="module")
def browser_session(built_book):
    with chromium_on(built_book) as (browser, base_url):
        yield browser, base_url, built_book


def open_page(browser_session, relative: str):
    browser, base_url, _ = browser_session
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = PageLog(base_url)
    log.attach(page)
    page.goto(f"{base_url}/{relative}", wait_until="load")
    page.wait_for_timeout(300)
    return page, log


def test_every_page_loads_cleanly_and_draws_its_figures(browser_session):
    _, _, html_dir = browser_session
    shots = html_dir.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    pages = content_pages(html_dir)
    assert pages, "no pages built"
    for path in pages:
        relative = path.relative_to(html_dir).as_posix()
        page, log = open_page(browser_session, relative)
        figures = page.locator(".plotly-graph-div")
        for i in range(figures.count()):
            figure = figures.nth(i)
            figure.scroll_into_view_if_needed()
            assert figure.locator("svg.main-svg").count() > 0, f"{relative}: plotly figure {i} was not drawn"
            box = figure.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 50, f"{relative}: figure {i} is empty ({box})"
        page.screenshot(path=str(shots / (relative.replace("/", "_") + ".png")), full_page=True)
        assert log.errors == [], f"{relative}: console errors {log.errors}"
        assert log.outside == [], f"{relative}: requests leaving the machine {log.outside}"
        assert log.failed == [], f"{relative}: failed requests {log.failed}"
        page.close()


def test_internal_links_resolve_and_images_have_alt_text(browser_session):
    _, _, html_dir = browser_session
    for path in content_pages(html_dir):
        text = path.read_text()
        for href in re.findall(r'href="([^"#][^"]*)"', text):
            parsed = urlparse(href)
            if parsed.scheme or href.startswith("mailto:") or href.startswith("//"):
                continue
            target = (path.parent / unquote(parsed.path)).resolve()
            assert target.exists(), f"{path.name}: link {href} points at nothing"
        for img in re.findall(r"<img\b[^>]*>", text):
            alt = re.search(r"""\balt=(?:"([^"]*)"|'([^']*)')""", img)
            assert alt and (alt.group(1) or alt.group(2) or "").strip(), f"{path.name}: no alt text: {img[:80]}"


def test_launch_links_open_notebooks_that_exist(browser_session, repo):
    """Colab and Binder buttons must point at an .ipynb that is in the repository."""
    _, _, html_dir = browser_session
    for path in content_pages(html_dir):
        if "chapters" not in path.parts:
            continue
        text = path.read_text()
        colab = re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', text)
        binder = re.findall(r'href="(https://mybinder\.org/v2/gh/[^"]+)"', text)
        assert colab, f"{path.name} has no Colab link"
        assert binder, f"{path.name} has no Binder link"
        for url in colab:
            notebook = re.sub(r"^https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/", "", url)
            assert notebook.endswith(".ipynb") and (repo / notebook).exists(), f"{path.name}: Colab opens {notebook}"
        for url in binder:
            target = unquote(re.search(r"urlpath=(?:lab/tree/|tree/)?([^&\"]+)", url).group(1))
            assert (repo / target).exists(), f"{path.name}: Binder opens {target}, which is not in the repo"


def _explorer(page):
    """The first figure on the page that has a dropdown and a slider (the copy explorer)."""
    figures = page.locator(".plotly-graph-div")
    for i in range(figures.count()):
        figure = figures.nth(i)
        if figure.locator(".updatemenu-header-group").count() and figure.locator(".slider-rail-rect").count():
            return figure
    raise AssertionError("no figure with a dropdown and a slider on this page")


def test_threshold_slider_changes_the_count_and_the_gallery(browser_session):
    page, log = open_page(browser_session, "chapters/03_gan.html")
    figure = _explorer(page)
    figure.scroll_into_view_if_needed()
    count = lambda: figure.locator(".annotation-text").first.text_content()  # noqa: E731
    gallery = lambda: figure.locator("g.layer-above image").first.get_attribute("href")  # noqa: E731
    before_count, before_gallery = count(), gallery()
    rail = figure.locator(".slider-rail-rect").first.bounding_box()
    seen = set()
    for fraction in (0.02, 0.98):  # the two ends of the threshold range
        page.mouse.click(rail["x"] + rail["width"] * fraction, rail["y"] + rail["height"] / 2)
        page.wait_for_timeout(300)
        seen.add((count(), gallery()))
    assert len(seen | {(before_count, before_gallery)}) >= 2, "moving the slider changed nothing"
    counts = {c for c, _ in seen}
    galleries = {g for _, g in seen}
    assert len(counts) == 2, f"the copy count did not follow the slider: {counts}"
    assert len(galleries) == 2, "the gallery did not follow the slider"
    assert log.errors == []


def test_model_dropdown_switches_the_data(browser_session):
    page, log = open_page(browser_session, "chapters/05_diffusion.html")
    figures = page.locator(".plotly-graph-div")
    figure, labels = None, []
    for i in range(figures.count()):
        candidate = figures.nth(i)
        if not candidate.locator(".updatemenu-header-group").count():
            continue
        candidate.scroll_into_view_if_needed()
        candidate.locator(".updatemenu-header-group").first.click()
        page.wait_for_timeout(200)
        labels = candidate.locator(".updatemenu-dropdown-button").all_text_contents()
        if len({label.split(" · ")[0] for label in labels}) > 1:
            figure = candidate
            break
        candidate.locator(".updatemenu-header-group").first.click()
    assert figure is not None, "no dropdown offering several models on the diffusion page"
    before = figure.locator(".annotation-text").first.text_content()
    current_model = before.split(":")[0]
    target = next(i for i, label in enumerate(labels) if not label.startswith(current_model))
    wanted = labels[target].split(" · ")[0]
    figure.locator(".updatemenu-dropdown-button").nth(target).click()
    page.wait_for_timeout(300)
    after = figure.locator(".annotation-text").first.text_content()
    assert after.startswith(wanted) and after != before, f"dropdown did not switch the model: {before!r} -> {after!r}"
    assert log.errors == []


def test_hovering_a_point_shows_its_image_pair(browser_session):
    page, log = open_page(browser_session, "chapters/02_data_and_copies.html")
    figures = page.locator(".plotly-graph-div")
    hover_figures = [
        figures.nth(i)
        for i in range(figures.count())
        if "hover a point" in " ".join(figures.nth(i).locator(".annotation-text").all_text_contents())
    ]
    assert hover_figures, "no hover-pair figure on the page"
    figure = hover_figures[0]
    figure.scroll_into_view_if_needed()
    image = lambda: figure.locator("image").first.get_attribute("href")  # noqa: E731
    points = figure.locator(".scatterlayer .point")
    shown = set()
    for k in (0, points.count() - 1):
        box = points.nth(k).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
        shown.add(image())
        assert page.locator(".hovertext").count() > 0, "no hover label appeared"
    assert len(shown) == 2, "hovering different points did not show different image pairs"
    assert log.errors == []


def test_every_figure_has_a_text_caption(browser_session):
    _, _, html_dir = browser_session
    for path in content_pages(html_dir):
        text = path.read_text()
        figures = text.count('class="plotly-graph-div"')
        captions = text.count('<figcaption class="mnistmem-caption">')
        assert captions >= figures, f"{path.name}: {figures} figures but {captions} captions"
