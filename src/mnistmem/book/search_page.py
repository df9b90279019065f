"""The "Was this digit in the training set?" page: an exact search over all 60,000 training digits that
runs in the reader's browser, with no server and no kernel.

What lives here, and why:

* `centre_like_mnist`: the MNIST preparation of a drawn digit (bounding box scaled to fit 20 × 20, keeping its
  shape, with grey edges from area averaging; then placed in a 28 × 28 field with its centre of mass at the
  centre, as LeCun, Cortes and Burges describe the data set). It is written in integer arithmetic so that the
  page's JavaScript (`book/_static/mnistmem-search.js`, `centreLikeMnist`) gives the *same bytes*: the tests
  draw strokes in Chromium and compare the page's image with this function's.
* `page_config`: everything the page's script needs that is a number of the book — the copy criteria's
  thresholds and directions read from `mnistmem.copies.CRITERIA`, and beside each the share of held-out test
  digits it calls a copy, read from the committed `calibration` experiment. Exported when the page is built,
  never typed into the script.
* `write_static`: the data the page fetches on first use (training and test digits, every generated sample of
  the main experiment and each sample's nearest training digit from the committed tables), as gzip-compressed
  bytes that the browser decompresses natively (`DecompressionStream`). Written at build time into
  `_static/search/` of the built HTML (`mnistmem.sphinxext`), through a cache under `book/_build`; never
  committed.
* `show_tool`: the page's HTML (controls, with labels, and the results areas).

The search itself is in `book/_static/mnistmem-search-worker.js` (a Web Worker, so the page never freezes):
integer squared byte distances to all 60,000 digits, k = 50 kept in order (distance, then lower index), the
distance sqrt(d2)/255 — the arithmetic of `mnistmem.neighbors.knn`, so its answers are equal, not close.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistmem.copies import CARLINI_ALPHA, CARLINI_N, CRITERIA

#: the page's chapter (Sphinx document name); the build writes the page's data only when it is in the book
DOCNAME = "chapters/02b_search_the_training_set"
#: where the built book serves the page's data, relative to the HTML root
STATIC_SUBDIR = "_static/search"
#: the criteria the page runs: those of `CRITERIA` that need no neural network
PAGE_CRITERIA = ("l2", "nn_ratio", "calibrated_l2", "ssim")
#: neighbours searched (Carlini's calibrated distance needs the 50 nearest) and neighbours shown
SEARCH_K = CARLINI_N
SHOWN_K = 10
#: closest samples per model shown in the reverse look-up
REVERSE_K = 5
MODELS = ("gan", "vae", "diffusion")
#: bump when the files' layout changes (part of the cache key)
FORMAT_VERSION = 1
#: the drawing canvas's size in pixels (its backing store; the screen size is set by CSS)
CANVAS_SIZE = 280
BOX = 20
FIELD = 28


# ------------------------------------------------------------------------------------------- centring
def _overlaps(source: int, target: int) -> np.ndarray:
    """Integer weights [target, source]: how much source cell s overlaps target cell t when `source` cells
    are squeezed into `target` cells, in units where a source cell is `target` long and a target cell
    `source` long (so every overlap is a whole number)."""
    t = np.arange(target)[:, None]
    s = np.arange(source)[None, :]
    low = np.maximum(t * source, s * target)
    high = np.minimum((t + 1) * source, (s + 1) * target)
    return np.maximum(high - low, 0).astype(np.int64)


def centre_like_mnist(canvas: np.ndarray) -> np.ndarray:
    """A drawn digit prepared as MNIST prepared its digits: uint8 [28, 28].

    `canvas` is a grey image (uint8 [H, W], white ink on black; any size). Steps, all in exact integers:
    1. the bounding box of the non-black pixels;
    2. scaled, keeping its shape, so its longer side is 20 pixels (the other side rounded half up, at least
       1); each new pixel is the area-weighted mean of the canvas pixels it covers, rounded half up — the
       anti-aliasing that gives MNIST its grey edges;
    3. placed in a black 28 × 28 field so that its centre of mass (of the rounded grey values, in row and
       column numbers 0-27) falls on pixel (14, 14), to the nearest whole pixel (half up) — where it lies, within
       half a pixel, in every MNIST digit; pixels that would fall outside are dropped.
    A blank canvas gives a black image. The page's `centreLikeMnist` does the same arithmetic.
    """
    a = np.asarray(canvas)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError(f"canvas must be a uint8 grey image [H, W], got {a.dtype} {a.shape}")
    out = np.zeros((FIELD, FIELD), np.uint8)
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    if rows.size == 0:
        return out
    crop = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.int64)
    h, w = crop.shape
    longest = max(h, w)
    th = max(1, (BOX * h + longest // 2) // longest)
    tw = max(1, (BOX * w + longest // 2) // longest)
    numerator = _overlaps(h, th) @ crop @ _overlaps(w, tw).T  # exact integers
    area = h * w
    box = (2 * numerator + area) // (2 * area)  # round half up
    mass = int(box.sum())
    if mass == 0:
        oy, ox = (FIELD - th) // 2, (FIELD - tw) // 2
    else:
        # centre of mass (row and column numbers, weighted by grey value) moved to pixel (14, 14), where MNIST's
        # own digits have it (within half a pixel): offset = round_half_up(14 - Σ i·v / Σ v)
        sy = int((box.sum(1) * np.arange(th)).sum())
        sx = int((box.sum(0) * np.arange(tw)).sum())
        oy, ox = (29 * mass - 2 * sy) // (2 * mass), (29 * mass - 2 * sx) // (2 * mass)
    for y in range(th):
        if 0 <= y + oy < FIELD:
            x0, x1 = max(0, -ox), min(tw, FIELD - ox)
            if x0 < x1:
                out[y + oy, x0 + ox : x1 + ox] = box[y, x0:x1]
    return out


# ------------------------------------------------------------------------------------------- the page's numbers
def criteria_export(calibration=None) -> list[dict]:
    """The copy criteria the page runs, as `CRITERIA` defines them, each with the calibration the book uses.

    `calibration`: the `calibration` experiment's results (`mnistmem.results.load("calibration")`); its
    baseline stage records, per criterion, how many of the held-out half of the MNIST test digits it calls a
    copy. Without it the calibration is left out (the unit tests)."""
    from mnistmem.book.common import CRITERION_NAMES
    from mnistmem.book.figures import threshold_text
    from mnistmem.book.sentences import copy_words

    held_out = calibration.summary("baseline")["held_out"] if calibration is not None else {}
    rows = []
    for name in PAGE_CRITERIA:
        c = CRITERIA[name]
        info = {"direction": c.direction, "inclusive": c.inclusive}
        row = {
            "name": name,
            "label": CRITERION_NAMES[name],
            "direction": c.direction,
            "inclusive": c.inclusive,
            "threshold": c.default_threshold,
            "threshold_text": f"{copy_words(info)} {threshold_text(c.default_threshold)}",
            "chosen_by": c.chosen_by,
            "source": c.source,
        }
        if name in held_out:
            fa = held_out[name]["false_alarms_report_half"]
            row["calibration"] = {k: fa[k] for k in ("count", "n", "rate", "ci_low", "ci_high")}
        rows.append(row)
    return rows


@dataclass
class StaticFiles:
    """The page's data files in a folder, and what the page needs to know about them."""

    folder: Path
    files: dict[str, dict]  # name -> {"bytes": compressed size, "count": images or values}
    models: list[dict]  # [{"tag", "name", "count"}]


def _arrays(main=None) -> dict[str, np.ndarray]:
    """Every array the page serves, by file name (uncompressed bytes in the order the page reads them)."""
    from mnistmem import data

    train, train_labels = data.load_mnist("train")
    test, test_labels = data.load_mnist("test")
    arrays = {
        "train-images.u8.gz": np.ascontiguousarray(train, np.uint8),
        "train-labels.u8.gz": np.asarray(train_labels, np.uint8),
        "test-images.u8.gz": np.ascontiguousarray(test, np.uint8),
        "test-labels.u8.gz": np.asarray(test_labels, np.uint8),
    }
    if main is not None:
        for tag in MODELS:
            if f"sample_{tag}" not in main.manifest["stages"]:
                continue
            images, _ = main.samples(f"sample_{tag}")
            table = main.table(f"score_{tag}")
            if len(table) != len(images):
                raise ValueError(f"{tag}: {len(images)} samples but {len(table)} table rows")
            arrays[f"samples-{tag}.u8.gz"] = np.ascontiguousarray(images, np.uint8)
            nn1 = table.nn_index[:, 0]
            if nn1.max() >= 2**16:
                raise ValueError(f"{tag}: training indices beyond 65,535 do not fit the page's 16-bit file")
            arrays[f"samples-{tag}-nn1.u16le.gz"] = nn1.astype("<u2")
    return arrays


def _cache_root() -> Path:
    from mnistmem.paths import repo_root

    root = repo_root()
    if root is not None:
        return root / "book" / "_build" / "search-static"
    import tempfile

    return Path(tempfile.gettempdir()) / "mnistmem-search-static"


def prepare_static(main=None, cache_root: Path | None = None) -> StaticFiles:
    """Write (once per content) the page's gzip files into a cache folder and describe them.

    The folder is named by the SHA-256 of everything in it, so a change in the data or the results makes a
    new one, and the page and the Sphinx build (separate processes) agree on the same files."""
    from mnistmem.book.common import MODEL_NAMES

    arrays = _arrays(main)
    digest = hashlib.sha256(f"v{FORMAT_VERSION}".encode())
    for name, array in arrays.items():
        digest.update(name.encode() + b"\0" + array.tobytes() + b"\0")
    folder = (cache_root or _cache_root()) / digest.hexdigest()[:16]
    done = folder / "files.json"
    if not done.exists():
        work = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        files = {}
        for name, array in arrays.items():
            blob = gzip.compress(array.tobytes(), compresslevel=6, mtime=0)
            (work / name).write_bytes(blob)
            count = len(array) if array.ndim == 3 else array.size
            files[name] = {"bytes": len(blob), "count": int(count)}
        (work / "files.json").write_text(json.dumps(files, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
        for old in folder.parent.iterdir():  # earlier contents: no build reads them any more
            if old != folder and old.is_dir() and not old.name.endswith(".tmp"):
                shutil.rmtree(old, ignore_errors=True)
    files = json.loads(done.read_text())
    models = [
        {"tag": tag, "name": MODEL_NAMES[tag], "count": files[f"samples-{tag}.u8.gz"]["count"]}
        for tag in MODELS
        if f"samples-{tag}.u8.gz" in files
    ]
    return StaticFiles(folder, files, models)


def write_static(target: Path, main=None) -> list[Path]:
    """Copy the page's data files into `target` (the built book's `_static/search`); return them."""
    prepared = prepare_static(main)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in prepared.files:
        shutil.copyfile(prepared.folder / name, target / name)
        written.append(target / name)
    return written


def page_config(calibration=None, main=None) -> dict:
    """The JSON the page's script reads: criteria and calibration, data files, models and sizes."""
    prepared = prepare_static(main)
    note = None
    if calibration is not None:
        from mnistmem.book.common import scale_note

        note = scale_note(calibration)
    return {
        "k": SEARCH_K,
        "shown": SHOWN_K,
        "reverse_k": REVERSE_K,
        "carlini": {"alpha": CARLINI_ALPHA, "n": CARLINI_N},
        "criteria": criteria_export(calibration),
        "calibration_note": note,
        "files": prepared.files,
        "models": prepared.models,
        "canvas": CANVAS_SIZE,
    }


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def show_tool(ch) -> None:
    """Display the search tool (the page's one interactive element)."""
    from mnistmem.book.display import show_html

    show_html(tool_html(page_config(ch["calibration"], ch["main"])))


def tool_html(config: dict) -> str:
    """The tool's HTML: every control labelled, the results announced to screen readers as they arrive."""
    files = config["files"]
    train_mb = _mb(files["train-images.u8.gz"]["bytes"] + files["train-labels.u8.gz"]["bytes"])
    test_mb = _mb(files["test-images.u8.gz"]["bytes"] + files["test-labels.u8.gz"]["bytes"])
    options = "".join(
        f'<option value="{html.escape(m["tag"])}">{html.escape(m["name"])}</option>' for m in config["models"]
    )
    max_sample = min((m["count"] for m in config["models"]), default=1) - 1
    sample_mb = _mb(sum(v["bytes"] for k, v in files.items() if k.startswith("samples-")))
    blob = json.dumps(config).replace("</", "<\\/")
    samples_part = (
        f"""
  <div class="ms-source">
    <h3 class="ms-h">…or a generated sample</h3>
    <p class="ms-hint">Any of the samples the book's models made (the galleries in chapters 3–5 give their numbers).
    The first use loads the samples ({sample_mb}).</p>
    <div class="ms-row">
      <label for="ms-model">Model</label>
      <select id="ms-model">{options}</select>
      <label for="ms-sample">Sample number (0–{max_sample:,})</label>
      <input id="ms-sample" type="number" min="0" max="{max_sample}" step="1" value="0" inputmode="numeric">
      <button type="button" id="ms-sample-go">Search with this sample</button>
    </div>
  </div>"""
        if config["models"]
        else ""
    )
    reverse_part = (
        """
<section class="ms-reverse" aria-labelledby="ms-reverse-h">
  <h3 class="ms-h" id="ms-reverse-h">The other direction: which samples come closest to a training digit?</h3>
  <div class="ms-row">
    <label for="ms-train">Training digit number (0–59,999)</label>
    <input id="ms-train" type="number" min="0" max="59999" step="1" value="0" inputmode="numeric">
    <button type="button" id="ms-train-go">Show the closest samples</button>
  </div>
  <p id="ms-reverse-status" class="ms-status" role="status" aria-live="polite"></p>
  <div id="ms-reverse-out"></div>
</section>"""
        if config["models"]
        else ""
    )
    return f"""<div id="mnistmem-search" class="ms-tool" data-static="../{STATIC_SUBDIR}/"
 data-worker="../_static/mnistmem-search-worker.js">
<script type="application/json" id="ms-config">{blob}</script>
<link rel="stylesheet" href="../_static/mnistmem-search.css">
<div class="ms-sources">
  <div class="ms-source">
    <h3 class="ms-h">Draw a digit</h3>
    <p class="ms-hint" id="ms-draw-help">Draw with a mouse or a finger. With the keyboard: focus the drawing area,
    move the pen with the arrow keys, press Space to lift or lower it, Delete to clear and Enter to search.</p>
    <canvas id="ms-canvas" class="ms-canvas" width="{config["canvas"]}" height="{config["canvas"]}" tabindex="0"
     role="img" aria-label="Drawing area for a digit" aria-describedby="ms-draw-help"></canvas>
    <div class="ms-row">
      <button type="button" id="ms-clear">Clear</button>
      <button type="button" id="ms-draw-go">Search with my drawing</button>
    </div>
    <p class="ms-hint">The first search loads the 60,000 training digits ({train_mb}) from this book's own files.</p>
  </div>
  <div class="ms-source">
    <h3 class="ms-h">…or a test digit</h3>
    <p class="ms-hint">One of the 10,000 MNIST test digits: real handwriting no model was trained on
    ({test_mb} on first use).</p>
    <div class="ms-row">
      <label for="ms-test">Test digit number (0–9,999)</label>
      <input id="ms-test" type="number" min="0" max="9999" step="1" value="0" inputmode="numeric">
      <button type="button" id="ms-test-go">Search with this test digit</button>
    </div>
  </div>{samples_part}
  <div class="ms-source">
    <h3 class="ms-h">…or an image of your own</h3>
    <p class="ms-hint">A small picture of one digit. It stays in your browser: nothing is uploaded anywhere.
    A 28 × 28 image is used as it is; any other is centred like a drawing (dark ink on a light background is
    inverted first).</p>
    <div class="ms-row">
      <label for="ms-file">Image file</label>
      <input id="ms-file" type="file" accept="image/*">
    </div>
  </div>
</div>
<p id="ms-status" class="ms-status" role="status" aria-live="polite">Nothing searched yet.</p>
<section id="ms-result" class="ms-result" aria-label="Search result" hidden></section>{reverse_part}
<script src="../_static/mnistmem-search.js" defer></script>
</div>"""


def python_neighbours(test_index: int = 0, shown: int = SHOWN_K) -> None:
    """The same search in Python (`mnistmem.neighbors.knn`) for one test digit, as a table, so a reader can
    check the tool's answer for that digit against the book's own code."""
    from mnistmem import data
    from mnistmem.book.common import html_table
    from mnistmem.book.display import show_html
    from mnistmem.neighbors import knn

    train, labels = data.load_mnist("train")
    test = data.load_mnist("test")[0]
    distance, index = knn(test[test_index : test_index + 1], train, k=shown)
    pairs = zip(distance[0], index[0], strict=True)
    rows = [[r + 1, f"#{int(j):,}", int(labels[j]), f"{d:.3f}"] for r, (d, j) in enumerate(pairs)]
    show_html(
        html_table(
            ["rank", "training digit", "label", "pixel distance"],
            rows,
            f"The {shown} nearest training digits of test digit #{test_index}, computed by the book's Python code "
            "when this page was built. Search for the same test digit above: the tool must list the same digits, "
            "in the same order, at the same distances.",
        )
    )
