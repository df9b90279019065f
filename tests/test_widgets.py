"""The live controls recompute when a reader changes them (no browser or kernel needed to check that)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnistmem import data, widgets

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def sample_sets():
    train, _ = data.load_mnist("train")
    rng = np.random.default_rng(0)
    copies = train[[5, 5, 7, 100]]  # two exact copies of training image 5
    noise = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    images = np.concatenate([copies, noise])
    from mnistmem.neighbors import knn

    nearest = knn(images, train, k=1)[1][:, 0]
    return [widgets.SampleSet("toy model", images, nearest)]


def test_training_image_lookup_follows_the_index(sample_sets):
    train, _ = data.load_mnist("train")
    control = widgets.TrainingImageLookup(train, sample_sets, start=0)
    before = control.output.value
    control.index.value = 5
    after = control.output.value
    assert after != before
    assert "training image #5" in after and "2 of 24 samples" in after


def test_have_i_been_trained_tells_members_from_strangers(sample_sets):
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    control = widgets.HaveIBeenTrained(train, test, sample_sets)
    first = control.output.value
    assert "not in the training set" in first
    control.pick.value = 1
    assert control.output.value != first
    control.check(train[123], "a training image")
    assert "<b>in the training set</b>" in control.output.value


def test_uploaded_pictures_become_mnist_like_digits():
    train, _ = data.load_mnist("train")
    paper = Image.fromarray(255 - np.kron(train[0], np.ones((4, 4), np.uint8)))  # dark ink on white, 112x112
    buffer = io.BytesIO()
    paper.save(buffer, format="PNG")
    digit = widgets.image_from_upload(buffer.getvalue())
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit.mean() < 100, "ink should be white on black, like MNIST"
    assert np.corrcoef(digit.ravel().astype(float), train[0].ravel().astype(float))[0, 1] > 0.9


def test_retrain_control_reports_what_the_run_returns():
    samples = np.zeros((30, 28, 28), np.uint8)
    calls = []

    def fake_run(n, steps):
        calls.append((n, steps))
        return samples, 0.5, 0.1

    control = widgets.RetrainSmallModel(fake_run, sizes=(100, 300), steps=20)
    before = control.output.value
    control.size.value = 300
    control.button.click()
    assert calls == [(300, 20)]
    assert control.output.value != before and "50.0%" in control.output.value and "300 digits" in control.output.value


def test_static_book_gets_a_note_not_a_broken_box(monkeypatch, capsys):
    monkeypatch.setenv("MNISTMEM_BOOK_BUILD", "1")
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    widgets.show(object())
    assert "needs a running Python kernel" in shown[0].data
