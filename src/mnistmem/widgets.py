"""Live controls (ipywidgets) for readers who run a chapter in Jupyter, Colab or Binder.

Each control recomputes with real code when its value changes: look up any training image's nearest
generated samples, check whether a digit (picked or uploaded) is in the training set or among the samples
("have I been trained?"), or retrain a small model and watch its copy rate. In the static book there is no
kernel to run them, so `show()` prints a short note instead of an empty box.

Results are written into `ipywidgets.HTML` values, so a test can set a control and read what changed.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mnistmem.display import in_book_build
from mnistmem.figures import mosaic, png_data_uri

KERNEL_NOTE = (
    '<div class="mnistmem-note">This control recomputes live and needs a running Python kernel. '
    "Open this chapter in Colab or Binder with the rocket button at the top of the page.</div>"
)


def show(control) -> None:
    """Display a control's widget in a live notebook, or a note in the static book."""
    from IPython.display import HTML, display

    if in_book_build():
        display(HTML(KERNEL_NOTE))
    else:
        display(control.widget)


def _img(image: np.ndarray, caption: str, scale: int = 3) -> str:
    size = image.shape[1] * scale
    return (
        f'<figure style="display:inline-block;margin:4px;text-align:center">'
        f'<img src="{png_data_uri(image)}" width="{size}" alt="{html.escape(caption)}" '
        f'style="image-rendering:pixelated"><figcaption style="font-size:11px">{html.escape(caption)}</figcaption>'
        f"</figure>"
    )


@dataclass
class SampleSet:
    """One model's generated samples and, for each, the index of its nearest training image."""

    name: str
    images: np.ndarray
    nearest_index: np.ndarray


class TrainingImageLookup:
    """Type a training-image index: see it, and the generated samples closest to it from each model."""

    def __init__(self, train_images: np.ndarray, sample_sets: list[SampleSet], k: int = 4, start: int = 0) -> None:
        import ipywidgets as w

        self.train_images, self.sample_sets, self.k = train_images, sample_sets, k
        self.index = w.BoundedIntText(value=start, min=0, max=len(train_images) - 1, description="training image #")
        self.output = w.HTML()
        self.index.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox([self.index, self.output])
        self.update()

    def update(self) -> None:
        from mnistmem.neighbors import knn

        i = int(self.index.value)
        target = self.train_images[i]
        parts = [_img(target, f"training image #{i}")]
        for sample_set in self.sample_sets:
            distances, indices = knn(target[None], sample_set.images, k=min(self.k, len(sample_set.images)))
            copied = int((sample_set.nearest_index == i).sum())
            parts.append(
                f"<div><b>{html.escape(sample_set.name)}</b>: {copied} of {len(sample_set.images):,} samples have "
                f"this image as their nearest training image. Closest samples:<br>"
            )
            parts += [
                _img(sample_set.images[j], f"sample {j}, distance {d:.2f}")
                for d, j in zip(distances[0], indices[0], strict=True)
            ]
            parts.append("</div>")
        self.output.value = "".join(parts)


def image_from_upload(content: bytes) -> np.ndarray:
    """An uploaded picture as an MNIST-like digit: greyscale, 28x28, white ink on black."""
    from PIL import Image, ImageOps

    picture = Image.open(io.BytesIO(content)).convert("L")
    array = np.asarray(picture, dtype=np.float64)
    if array.mean() > 127:  # dark ink on light paper: invert to MNIST's white-on-black
        picture = ImageOps.invert(picture)
    picture = ImageOps.pad(picture, (max(picture.size),) * 2, color=0).resize((28, 28), Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype=np.uint8)


class HaveIBeenTrained:
    """Pick a test digit or upload a picture: is it (or something like it) in the training set or the samples?

    The verdict uses the nearest-neighbour ratio of Yoon et al. (2023): a nearest training image much closer
    than the second nearest means this exact image, not just this kind of digit, is in the data.
    """

    def __init__(
        self,
        train_images: np.ndarray,
        test_images: np.ndarray,
        sample_sets: list[SampleSet],
        ratio_threshold: float = 1 / 3,
        k: int = 5,
    ) -> None:
        import ipywidgets as w

        self.train_images, self.test_images, self.sample_sets = train_images, test_images, sample_sets
        self.ratio_threshold, self.k = ratio_threshold, k
        self.pick = w.BoundedIntText(value=0, min=0, max=len(test_images) - 1, description="test digit #")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="or upload")
        self.output = w.HTML()
        self.pick.observe(
            lambda _: self.check(self.test_images[int(self.pick.value)], f"test digit #{self.pick.value}"),
            names="value",
        )
        self.upload.observe(self._on_upload, names="value")
        self.widget = w.VBox([w.HBox([self.pick, self.upload]), self.output])
        self.check(self.test_images[0], "test digit #0")

    def _on_upload(self, change) -> None:
        files = change["new"]
        if files:
            item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
            self.check(image_from_upload(bytes(item["content"])), f"your upload ({item.get('name', 'image')})")

    def check(self, image: np.ndarray, label: str) -> None:
        from mnistmem.neighbors import knn

        distances, indices = knn(image[None], self.train_images, k=self.k)
        ratio = distances[0, 0] / max(distances[0, 1], 1e-12)
        verdict = (
            "<b>in the training set</b> (or a near-exact duplicate of a training image)"
            if ratio < self.ratio_threshold
            else "not in the training set: its nearest training images are similar digits, not the same image"
        )
        parts = [
            _img(image, label),
            f"<p>Nearest training image at distance {distances[0, 0]:.2f}; ratio to the second nearest "
            f"{ratio:.2f} (a copy if below {self.ratio_threshold:.2f}): {verdict}.</p>",
        ]
        parts += [
            _img(self.train_images[j], f"training #{j}, d={d:.2f}")
            for d, j in zip(distances[0], indices[0], strict=True)
        ]
        for sample_set in self.sample_sets:
            sd, si = knn(image[None], sample_set.images, k=3)
            parts.append(f"<div><b>{html.escape(sample_set.name)}</b> samples closest to it:<br>")
            parts += [_img(sample_set.images[j], f"sample {j}, d={d:.2f}") for d, j in zip(sd[0], si[0], strict=True)]
            parts.append("</div>")
        self.output.value = "".join(parts)


class RetrainSmallModel:
    """Choose a training-set size and press the button: a small model is trained here and its samples checked.

    `run(n, steps)` does the work and returns `(samples uint8 [m,28,28], share of samples whose nearest
    training image is one of the model's own n, nearest-neighbour ratio copy rate)`; the chapters pass
    `mnistmem.experiments.quick.retrain_and_check`.
    """

    def __init__(self, run: Callable[[int, int], tuple[np.ndarray, float, float]], sizes=(100, 300, 1000), steps=300):
        import ipywidgets as w

        self.run = run
        self.size = w.SelectionSlider(options=list(sizes), value=sizes[0], description="digits")
        self.steps = w.IntSlider(value=steps, min=10, max=5000, step=10, description="steps")
        self.button = w.Button(description="train and check", button_style="primary")
        self.output = w.HTML("<p>Press the button to train (takes a while on a CPU; minutes on a GPU).</p>")
        self.button.on_click(lambda _: self.train())
        self.widget = w.VBox([w.HBox([self.size, self.steps, self.button]), self.output])

    def train(self) -> None:
        n, steps = int(self.size.value), int(self.steps.value)
        self.output.value = f"<p>Training on {n} digits for {steps} steps...</p>"
        samples, own_share, ratio_rate = self.run(n, steps)
        chance = n / 60_000
        self.output.value = (
            f"<p>Trained on {n} digits for {steps} steps. Of {len(samples)} samples, <b>{100 * own_share:.1f}%</b> "
            f"have their nearest of all 60,000 training images among the model's own {n} (chance: "
            f"{100 * chance:.2f}%); <b>{100 * ratio_rate:.1f}%</b> pass the nearest-neighbour ratio test "
            "for a copy.</p>" + _img(mosaic(samples[:20], columns=10), "the first 20 samples", scale=2)
        )
