"""A small MNIST CNN (≥ 99 % test accuracy, < 1 MB) used to judge generated digits.

Three jobs in the book: label samples (`predict`), give a perceptual feature space for a copy criterion
(`features`: the 128-d penultimate activations), and score sample quality as MNIST-FID (see
`mnistmem.quality`). It also reports confidence (max softmax), on which the experiments gate
"recognisable digits".

Architecture: two blocks of two 3×3 convs (32 then 64 channels, BatchNorm, ReLU) each followed by 2×2 max
pooling, then 1024 -> 128 (the features) -> 10 logits; 197 k parameters. Training augments with random
shifts of up to 2 pixels. The committed weights live in `data/models/classifier/` with a manifest
(accuracy, config, commit, hardware); `scripts/train_classifier.py` produces them and `load_pretrained()`
loads them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from mnistmem.models.base import FamilyModel

TRAIN_COMMAND = "python scripts/train_classifier.py"
#: SHA-256 of the committed classifier's weights: they load only with this hash (they define MNIST-FID, the
#: recognised share and a copy criterion). A retrained classifier must update it (the script prints it).
PINNED_WEIGHTS_SHA256 = "5242b87e4f0c13458b427571bf0da7054e2b2006111fc4536a3ae1473eb9e973"


def _conv_block(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    ]


def random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each image by whole pixels in [-max_shift, max_shift] (zero fill); uses the global RNG."""
    if max_shift <= 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, batch), device=x.device)
    rows = (dy[:, None] + torch.arange(height, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(width, device=x.device)[None, :])[:, None, None, :]
    index = torch.arange(batch, device=x.device)[:, None, None, None]
    return padded[index, 0, rows, cols]


class Classifier(FamilyModel):
    """Small CNN: `width` channels in the first block (2× in the second), `features` penultimate units."""

    family = "classifier"
    generative = False
    default_lr = 2e-3
    channels_last_cpu = True

    def __init__(self, width: int = 32, features: int = 128, num_classes: int = 10, max_shift: int = 2) -> None:
        super().__init__(width=width, features=features, num_classes=num_classes, max_shift=max_shift)
        self.num_classes = num_classes
        self.max_shift = max_shift
        self.body = nn.Sequential(
            *_conv_block(1, width),  # 28 -> 24 -> 12
            *_conv_block(width, 2 * width),  # 12 -> 8 -> 4
            nn.Flatten(),
            nn.Linear(2 * width * 16, features),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def losses(self, x: torch.Tensor, y: torch.Tensor, log: dict[str, float]) -> Iterator[tuple[str, torch.Tensor]]:
        if (y < 0).any() or (y >= self.num_classes).any():
            raise ValueError(
                f"classifier labels must be in 0..{self.num_classes - 1}; train it on digits only (no canaries)"
            )
        logits = self(random_shift(x, self.max_shift))
        loss = F.cross_entropy(logits.float(), y)
        log.update(loss=float(loss.detach()), acc=float((logits.argmax(1) == y).float().mean()))
        yield "main", loss

    # ------------------------------------------------------------------------------------------- inference
    def features(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Penultimate features, float32 [N, features], of uint8 images [N,28,28]."""
        return self.batched(np.asarray(images), self.body, batch_size).reshape(len(images), -1)

    def logits(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Class logits, float32 [N, num_classes]."""
        return self.batched(np.asarray(images), self, batch_size).reshape(len(images), -1)

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """(labels int64 [N], confidence float32 [N] = max softmax probability)."""
        probs = torch.softmax(torch.from_numpy(self.logits(images, batch_size)), dim=1)
        confidence, labels = probs.max(dim=1)
        return labels.numpy().astype(np.int64), confidence.numpy()

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float((self.predict(images)[0] == np.asarray(labels)).mean())

    def loss(self, images: np.ndarray, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
        """Per-example cross-entropy against `labels` (required)."""
        if labels is None:
            raise ValueError("classifier loss needs labels=")
        logits = torch.from_numpy(self.logits(images)).double()
        return F.cross_entropy(logits, torch.as_tensor(labels), reduction="none").numpy()


MODEL_CLASS = Classifier


# ------------------------------------------------------------------------------------------- pretrained
def load_pretrained(path: str | os.PathLike | None = None, device: torch.device | str | None = None) -> Classifier:
    """The committed classifier (eval mode, cached per process), refused unless its hash is the pinned one."""
    from mnistmem.models.pretrained import load_pinned

    return load_pinned("classifier", Classifier, PINNED_WEIGHTS_SHA256, TRAIN_COMMAND, path, device)


def features(images: np.ndarray, classifier: Classifier | None = None) -> np.ndarray:
    """Penultimate features float32 [N, 128] of uint8 images [N,28,28] under the pretrained classifier."""
    return (classifier or load_pretrained()).features(images)
