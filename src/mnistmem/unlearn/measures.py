"""What each unlearning method is judged by, on one model (or SISA mixture) at a time. The samples themselves
come from the one sampler (`mnistmem.sampling.sample_mixture`; a single model is the mixture of one).

* **Reproduction** of an item among N samples: a sample reproduces the item when it lies within the `l2`
  copy threshold of it (SISS, arXiv 2503.01034, counts a sample as the forgotten image by an l2 threshold),
  or when the item is its nearest reference image and passes the nearest-neighbour ratio test
  (Gu et al. 2023, arXiv 2310.02664). The reference set is all 60,000 MNIST training digits plus the canary
  glyphs. Also the closest any sample comes to the item. Measured for the forgotten item and for a control
  item that was *not* forgotten (unlearning must not erase everything).
* **Copying overall**: the share of samples that are nearest-neighbour-ratio copies of any reference image.
* **Quality**: MNIST-FID against the test digits, the classifier's mean confidence and the share of samples it
  recognises (`mnistmem.quality`); None when the pretrained classifier is not available.
* **Membership signal**: the model's per-example loss on the item, against its loss on unseen test digits:
  a model that still "knows" the item fits it better than almost any unseen digit (a loss-threshold
  membership inference, Yeom et al. 2018, arXiv 1709.01604).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mnistmem.copies import CRITERIA, ratio_copies
from mnistmem.models.base import FamilyModel
from mnistmem.neighbors import knn, pixel_distances


def reference_set(train_images: np.ndarray, canaries: np.ndarray) -> np.ndarray:
    """The images a sample is compared with: all training digits, then the canary glyphs."""
    return np.concatenate([train_images, canaries]) if len(canaries) else train_images


def reference_index(source: int, n_train: int) -> int:
    """Row of an item in `reference_set`: a digit's training index, or n_train + k for canary k."""
    return int(source) if source >= 0 else n_train + (-int(source) - 1)


def nearest(samples: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's two nearest reference images (exact search): distances [n,2] and indices [n,2]."""
    return knn(samples, reference, k=2, progress=False)


def reproduction(
    samples: np.ndarray, item: np.ndarray, item_ref: int, nn_distance: np.ndarray, nn_index: np.ndarray
) -> dict:
    """How often and how closely the samples reproduce one item (see the module docstring)."""
    d = pixel_distances(samples, item)
    by_ratio = (nn_index[:, 0] == item_ref) & ratio_copies(nn_distance)
    hits = CRITERIA["l2"].flag(d) | by_ratio
    closest = int(np.argmin(d))
    return {
        "hits": int(hits.sum()),
        "n": len(samples),
        "share": float(hits.mean()),
        "closest_distance": float(d[closest]),
        "closest_sample": closest,
        "hit_samples": np.flatnonzero(hits)[:16].tolist(),
    }


def copy_share(nn_distance: np.ndarray) -> float:
    """Share of samples that are nearest-neighbour-ratio copies of some reference image."""
    return float(ratio_copies(nn_distance).mean())


def quality(samples: np.ndarray, test_images: np.ndarray) -> dict:
    """MNIST-FID and mean classifier confidence; None (with the reason) without the pretrained classifier."""
    try:
        from mnistmem import quality as q
        from mnistmem.models import classifier

        model = classifier.load_pretrained()
    except (ImportError, FileNotFoundError) as error:
        return {
            "fid": None,
            "confidence": None,
            "recognised": None,
            "note": f"no quality score: {str(error).splitlines()[0]}",
        }
    _, confidence = q.classifier_confidence(samples, model)
    return {
        "fid": float(q.mnist_fid(samples, test_images, model)),
        "confidence": float(np.mean(confidence)),
        "recognised": q.recognised_share(confidence),
    }


def membership(loss: Callable[[np.ndarray], np.ndarray], item: np.ndarray, unseen: np.ndarray) -> dict:
    """The model's loss on the item against its losses on unseen digits.

    `rank` is the share of unseen digits the model fits better than the item: near 0 means the item stands
    out as a training member, near the middle means it looks like any unseen digit.
    """
    losses = loss(np.concatenate([item[None], unseen]))
    item_loss, others = float(losses[0]), losses[1:]
    return {
        "item_loss": item_loss,
        "unseen_median": float(np.median(others)),
        "rank": float((others < item_loss).mean()),
    }


def ensemble_loss(models: Sequence[FamilyModel], seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Per-example loss of a mixture: the lowest over its models (an attacker checks every shard)."""

    def loss(images: np.ndarray) -> np.ndarray:
        return np.min([m.loss(images, seed=seed) for m in models], axis=0)

    return loss
