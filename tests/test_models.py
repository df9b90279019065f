"""Every family trains a few steps on a tiny subset and its loss falls; per-example losses; classifier."""

import json

import numpy as np
import pytest

from mnistmem import data
from mnistmem.dataspec import DataSpec
from mnistmem.models import UnknownModelError, build_model
from mnistmem.training import TrainConfig, read_metrics, train

from .conftest import TINY

LR = {"gan": 1e-3, "vae": 3e-3, "diffusion": 3e-3, "classifier": 3e-3}
LOSS_KEY = {"gan": "loss_d", "vae": "loss", "diffusion": "loss", "classifier": "loss"}


@pytest.mark.parametrize(
    ("family", "precision"),
    [
        ("gan", "fp32"),
        ("vae", "fp32"),
        ("diffusion", "fp32"),
        ("classifier", "fp32"),
        ("vae", "bf16"),
        ("diffusion", "bf16"),
    ],
)
def test_family_trains_and_loss_falls(family, precision, tmp_path):
    """fp32 for every family, so the test means the same on every CPU; bf16 autocast (which runs on any
    CPU, fast only on some) for the families whose loss falls smoothly. A GAN's discriminator loss depends on the
    last bits of arithmetic: after 40 steps it had fallen 14% with one thread and 24% with two (so a 20% test
    passed or failed with the thread count); after 80 steps, 35% and 41%, so the GAN trains 80."""
    steps = 80 if family == "gan" else 40
    config = TrainConfig(
        model=family,
        model_kwargs=TINY[family],
        data=DataSpec(n=64, seed=0),
        steps=steps,
        batch_size=16,
        lr=LR[family],
        log_every=1,
        checkpoint_every=steps,
        ema=None,
        precision=precision,
    )
    final = train(config, tmp_path, progress=False)
    assert final.name == f"step_{steps:08d}"
    losses = [m[LOSS_KEY[family]] for m in read_metrics(tmp_path)]
    assert len(losses) == steps and np.isfinite(losses).all()
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:4]), losses
    state = json.loads((final / "state.json").read_text())
    assert state["family"] == family and state["config"]["data"]["n"] == 64


@pytest.mark.parametrize("family", ["gan", "vae", "diffusion"])
def test_per_example_loss_is_deterministic(family):
    model = build_model(family, **TINY[family]).eval()
    images = data.load_mnist("train")[0][:6]
    a, b = model.loss(images, seed=1), model.loss(images, seed=1)
    assert a.shape == (6,) and a.dtype == np.float64 and np.isfinite(a).all()
    assert np.array_equal(a, b)


def test_unknown_model_and_bad_kwargs():
    with pytest.raises(UnknownModelError, match="choose one of"):
        build_model("transformer")
    with pytest.raises(UnknownModelError):
        TrainConfig(model="transformer")
    with pytest.raises(ValueError, match="model_kwargs"):
        build_model("gan", width=3)


def test_classifier_refuses_canary_labels(tmp_path):
    from mnistmem.dataspec import CanarySpec

    config = TrainConfig(
        model="classifier",
        model_kwargs=TINY["classifier"],
        steps=2,
        batch_size=8,
        data=DataSpec(n=2, canaries=(CanarySpec("©", 30),)),
    )
    with pytest.raises(ValueError, match="digits only"):
        train(config, tmp_path, progress=False)


def test_pretrained_classifier_quality():
    """The committed classifier (trained by scripts/train_classifier.py to >= 99 %)."""
    from mnistmem.models.classifier import load_pretrained
    from mnistmem.quality import classifier_confidence, mnist_fid

    model = load_pretrained()
    assert model.config["test_accuracy"] >= 0.99
    images, labels = data.load_mnist("test")
    predicted, confidence = classifier_confidence(images[:2000])
    assert (predicted == labels[:2000]).mean() >= 0.985
    assert confidence.shape == (2000,) and (confidence <= 1).all() and np.median(confidence) > 0.99
    assert model.features(images[:5]).shape == (5, 128)
    same = mnist_fid(images[:1000], images[1000:2000])
    noise = np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    assert same < 0.1 * mnist_fid(noise, images[1000:2000])
