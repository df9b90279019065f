"""A live control for chapter 8: pick the item that was forgotten and the method; see what the model now draws.

The output (an `ipywidgets.HTML`) lists the method's cost and measures, its samples closest to the item, and
the samples closest to the item after relearning, all recomputed from the stored results whenever a value
changes (distances are recomputed with `numpy`, not read from the summary). In the static book
`mnistmem.book.widgets.show` prints a note instead, as for the other controls.
"""

from __future__ import annotations

import html

import numpy as np

from mnistmem.book.widgets import _img


class ForgetExplorer:
    """Two dropdowns (item, method) over the `unlearning` results; the output recomputes on every change."""

    def __init__(self, result, k: int = 6) -> None:
        import ipywidgets as w

        from mnistmem.book.unlearning_facts import METHOD_NAMES, TARGET_NAMES, method_rows

        self.result, self.k = result, k
        self.rows = {(r["target"], r["method"]): r for r in method_rows(result)}
        if not self.rows:
            raise ValueError("the unlearning results hold no method results to explore")
        targets = sorted({t for t, _ in self.rows}, key=["canary", "digit"].index)
        methods = [m for m in METHOD_NAMES if any((t, m) in self.rows for t in targets)]
        self.target = w.Dropdown(
            options=[(TARGET_NAMES[t], t) for t in targets], value=targets[0], description="forget"
        )
        self.method = w.Dropdown(
            options=[(METHOD_NAMES[m], m) for m in methods], value=methods[0], description="method"
        )
        self.output = w.HTML()
        self.target.observe(lambda _: self.update(), names="value")
        self.method.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.target, self.method]), self.output])
        self.update()

    def _closest(self, stage: str, file: str, item: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, sample numbers, distances) of the stored samples of one set closest to the item (a set
        stores the images of its samples nearest each item, `stored` marks them; the rest regenerate from seeds)."""
        from mnistmem.neighbors import pixel_distances

        arrays = self.result.arrays(stage, file)
        images = arrays["images"]
        stored = np.flatnonzero(arrays["stored"]) if "stored" in arrays else np.arange(len(images))
        d = pixel_distances(images[stored], item)
        order = np.argsort(d, kind="stable")[: self.k]
        return images, stored[order], d[order]

    def update(self) -> None:
        from mnistmem.book.unlearning_facts import _pct, item_image

        row = self.rows.get((self.target.value, self.method.value))
        if row is None:
            self.output.value = "<p>This method did not run for this item.</p>"
            return
        item = item_image(self.result, row["forgotten"]["item"])
        parts = [
            _img(item, row["forgotten"]["item"]["name"]),
            f"<p>Compute {row['relative_cost']:.2f}× retraining ({row['cost']['steps']:,} steps). The item appears in "
            f"<b>{_pct(row['forgotten']['share'])}</b> of samples; the control in "
            f"{_pct(row['control']['share']) if row['control'] else '–'}.</p><div><b>Closest samples now:</b><br>",
        ]
        images, order, distance = self._closest(row["stage"], row["file"], item)
        parts += [_img(images[i], f"sample {i}, d={d:.2f}") for i, d in zip(order, distance, strict=True)]
        parts.append("</div>")
        if row["relearned"] is not None:
            relearned, order, distance = self._closest(row["stage"], "relearned.npz", item)
            parts.append(f"<div><b>After relearning without it</b> ({_pct(row['relearned']['share'])} of samples):<br>")
            parts += [_img(relearned[i], f"sample {i}, d={d:.2f}") for i, d in zip(order, distance, strict=True)]
            parts.append("</div>")
        self.output.value = "".join(parts)
        self.output.description = html.escape(f"{self.target.value}/{self.method.value}")
