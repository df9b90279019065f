"""The built book as a legal reader meets it, at laptop (1280 px) and phone (390 px) width.

Every page at both widths: nothing wider than its container (no clipped caption, label, table cell or
chart annotation, no sideways page scroll, no control over a legend), no code input visible by default, the
sample | nearest training image | difference galleries drawn at least 3x MNIST's 28 px at 1280 px, one
colour per model in every plotly chart of the book (read from the plotly data), and the page does not jump
after load. Screenshots of every page at both widths go to book/_build/screenshots (reader_<page>_<width>.png).

`MNISTMEM_BUILT_BOOK=book/_build/html` runs these against a book built earlier instead of building afresh.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .browser import chromium_on

pytestmark = [pytest.mark.browser, pytest.mark.book]

playwright = pytest.importorskip("playwright.sync_api")

WIDTHS = (1280, 390)
#: Digits in a pair gallery are drawn at least this many CSS pixels wide at 1280 px (3 x MNIST's 28).
DIGIT_PX = 84
#: The most the page's height may change between first paint and a settled page, as a share of its height.
HEIGHT_CHANGE = 0.02
#: The most layout shift a page may accumulate while it loads (0.1 is the web's usual "good" bound).
SHIFT = 0.1
#: Chapters whose galleries of sample | nearest | difference must be there to be judged.
PAIR_PAGES = ("03_gan", "04_vae", "05_diffusion")
MODELS = ("GAN", "VAE", "diffusion")


def content_pages(html_dir: Path) -> list[Path]:
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(p for p in html_dir.rglob("*.html") if p.name not in skip and "_static" not in p.parts)


@pytest.fixture(scope="module")
def html_dir(request) -> Path:
    earlier = os.environ.get("MNISTMEM_BUILT_BOOK")
    if earlier:
        return Path(earlier).resolve()
    return request.getfixturevalue("built_book")


@pytest.fixture(scope="module")
def measured(html_dir):
    """Every page opened once at each width: what the tests below check, and a screenshot of each."""
    shots = html_dir.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    found: dict[tuple[str, int], dict] = {}
    with chromium_on(html_dir) as (browser, base_url):
        for path in content_pages(html_dir):
            relative = path.relative_to(html_dir).as_posix()
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.add_init_script(LAYOUT_SHIFT)
                page.goto(f"{base_url}/{relative}", wait_until="domcontentloaded")
                first = page.evaluate("document.documentElement.scrollHeight")
                page.wait_for_load_state("load")
                page.wait_for_timeout(1500)
                found[relative, width] = {"first_height": first, **page.evaluate(MEASURE)}
                name = relative.replace("/", "_").removesuffix(".html")
                page.screenshot(path=str(shots / f"reader_{name}_{width}.png"), full_page=True)
                page.close()
    return found


#: Sums the page's layout shifts (the Layout Instability API: the share of the viewport that moved).
LAYOUT_SHIFT = """
window.__shift = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) { if (!e.hadRecentInput) window.__shift += e.value; }
}).observe({type: 'layout-shift', buffered: true});
"""

MEASURE = r"""
() => {
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 &&
    getComputedStyle(e).visibility !== 'hidden'; };
  const describe = (e) => (e.tagName + '.' + e.className + ': ' + (e.textContent || '').trim()).slice(0, 120);
  const article = document.querySelector('main') || document.body;
  const column = article.getBoundingClientRect();
  const overflow = [];
  for (const e of article.querySelectorAll('figcaption, caption, th, td, label, p, h1, h2, h3, li, summary')) {
    if (visible(e) && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'auto') {
      overflow.push('clipped ' + describe(e));
    }
  }
  for (const e of article.querySelectorAll('table, figure, img, .plotly-graph-div')) {
    const r = e.getBoundingClientRect();
    if (visible(e) && r.right > column.right + 1) overflow.push('wider than the column ' + describe(e));
  }
  for (const svg of article.querySelectorAll('.plotly-graph-div svg.main-svg:first-of-type')) {
    const box = svg.getBoundingClientRect();
    const parent = svg.closest('.plotly-graph-div');
    for (const t of parent.querySelectorAll('.annotation-text, .gtitle, .xtitle, .ytitle, .legendtext')) {
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) overflow.push('cut chart text ' + describe(t));
    }
    // a chart's buttons and menus lie inside the chart (a phone must not cut "against passes over" in half)
    for (const b of parent.querySelectorAll('.updatemenu-button, .updatemenu-header')) {
      const r = b.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) {
        overflow.push('a chart button outside its chart in ' + parent.id + ': ' + (b.textContent || '').trim());
      }
    }
    const menus = [...parent.querySelectorAll('.updatemenu-header-group')].map(m => m.getBoundingClientRect());
    for (const l of parent.querySelectorAll('.legend')) {
      const r = l.getBoundingClientRect();
      for (const m of menus) {
        if (m.left < r.right && r.left < m.right && m.top < r.bottom && r.top < m.bottom) {
          overflow.push('a dropdown over the legend in ' + parent.id);
        }
      }
    }
  }
  // a table cell never breaks a word or a number across lines ("Diffusi|on", "2,300,000,00|0"): each word of
  // every visible cell lies on one line (a line may end after a hyphen, a dash or a slash; a phone's card
  // layout hides the column headings, which then stand beside each value)
  const range = document.createRange();
  for (const cell of article.querySelectorAll('table td, table th')) {
    const head = cell.closest('thead');
    if (!visible(cell) || (head && head.getBoundingClientRect().width < 2)) continue;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/[^\s\-\u2013\u2014/]+/g)) {
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) overflow.push('a word broken across lines in ' + cell.tagName + ': ' + m[0]);
      }
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    overflow.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px');
  }
  // a code cell is hidden when it sits in a closed <details> ("Show code cell source") or is not rendered
  const shown = (e) => visible(e) && !(e.closest('details') && !e.closest('details').open) &&
    (!e.checkVisibility || e.checkVisibility({visibilityProperty: true}));
  const code = [...document.querySelectorAll('.cell_input')].filter(shown).length;
  const digits = [...document.querySelectorAll('.mnistmem-pairs img')].filter(visible).map(
    img => img.getBoundingClientRect().width / Number(img.dataset.digits || 3));
  const colours = [];
  for (const gd of document.querySelectorAll('.plotly-graph-div')) {
    for (const trace of (gd.data || [])) {
      const name = String(trace.name || '');
      const m = name.match(/^(GAN|VAE|diffusion)\b/i);
      if (!m) continue;
      const colour = (trace.marker && typeof trace.marker.color === 'string' && trace.marker.color) ||
        (trace.line && trace.line.color) || null;
      colours.push([m[1].toLowerCase(), colour, name, gd.id]);
    }
  }
  return {overflow, code, digits, colours, shift: window.__shift || 0,
          height: document.documentElement.scrollHeight};
}
"""


def test_nothing_is_wider_than_its_container(measured):
    problems = [f"{page} at {width} px: {p}" for (page, width), m in measured.items() for p in m["overflow"]]
    assert not problems, "\n".join(problems[:40])


def test_no_code_input_is_visible_by_default(measured):
    shown = [f"{page} at {width} px: {m['code']}" for (page, width), m in measured.items() if m["code"]]
    assert not shown, f"code cells visible: {shown}"


def test_pair_galleries_draw_digits_large_enough_to_judge(measured):
    for chapter in PAIR_PAGES:
        page = f"chapters/{chapter}.html"
        digits = measured[page, 1280]["digits"]
        assert digits, f"{page}: no gallery of sample | nearest training image | difference"
    small = [
        f"{page}: {min(m['digits']):.0f} px"
        for (page, width), m in measured.items()
        if width == 1280 and m["digits"] and min(m["digits"]) < DIGIT_PX
    ]
    assert not small, f"digits drawn under {DIGIT_PX} px at 1280 px: {small}"
    phone = [
        f"{page}: {min(m['digits']):.0f} px"
        for (page, width), m in measured.items()
        if width == 390 and m["digits"] and min(m["digits"]) < 56
    ]
    assert not phone, f"digits drawn under 2x their size at 390 px: {phone}"


def test_each_model_has_one_colour_across_the_book(measured):
    seen: dict[str, set] = {}
    where: dict[tuple[str, str], str] = {}
    for (page, width), m in measured.items():
        if width != 1280:
            continue
        for model, colour, name, _ in m["colours"]:
            colour = re.sub(r"\s", "", str(colour)).lower()
            seen.setdefault(model, set()).add(colour)
            where.setdefault((model, colour), f"{page} ({name})")
    mixed = {model: {c: where[model, c] for c in colours} for model, colours in seen.items() if len(colours) > 1}
    assert not mixed, f"a model drawn in several colours: {mixed}"
    colours = [next(iter(c)) for c in seen.values()]
    assert len(set(colours)) == len(colours), f"two models share a colour: {seen}"


def test_pages_do_not_jump_after_load(measured):
    jumps = [
        f"{page} at {width} px: {m['first_height']} -> {m['height']} px"
        for (page, width), m in measured.items()
        if abs(m["height"] - m["first_height"]) > HEIGHT_CHANGE * m["height"]
    ]
    assert not jumps, "pages that grow after load: " + "; ".join(jumps)


def test_layout_shift_after_load_is_small(measured):
    shifts = [f"{page} at {width} px: {m['shift']:.3f}" for (page, width), m in measured.items() if m["shift"] > SHIFT]
    assert not shifts, f"layout shift above {SHIFT}: {shifts}"
