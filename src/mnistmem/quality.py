"""Sample quality through the pretrained MNIST classifier: MNIST-FID and per-sample confidence.

* `mnist_fid(samples, reference)`: the Fréchet distance between Gaussians fitted to the classifier's
  128-d penultimate features of the samples and of the reference (normally the 10k test digits) —
  FID with an MNIST classifier instead of Inception. 0 = same feature statistics; lower is better.
  Computed with `scipy.linalg.sqrtm`. Compare values only under the same classifier and sample counts
  (FID is biased upwards for small n).
* `classifier_confidence(samples)`: predicted digit and max softmax probability per sample; the
  experiments call a sample a "recognisable digit" when the confidence is high.
* `handwriting_like(nn_distance, test_nn_distance)`: which samples lie as close to some training digit as real
  handwriting does. The classifier alone is fooled: it labels 99% of uniform noise and a plain white blob with at
  least 90% confidence (measured on this project's classifier), so a quality gate needs this second test.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from mnistmem.data import fingerprint
from mnistmem.models.classifier import Classifier, load_pretrained


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)), with the usual jitter if the product is singular."""
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(cov1 @ cov2, disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(cov1)) * 1e-6
        covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _check_images(images: np.ndarray, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{name} must be uint8 [N,28,28], got {images.dtype} {images.shape}")
    if len(images) < 2:
        raise ValueError(f"{name} needs at least 2 images for a covariance, got {len(images)}")
    return images


def mnist_fid(samples_uint8: np.ndarray, reference_uint8: np.ndarray, classifier: Classifier | None = None) -> float:
    """MNIST-FID between `samples_uint8` and `reference_uint8` (both uint8 [N,28,28]).

    The reference's statistics are computed once per process and classifier (it is nearly always the
    10,000 test digits), which makes scoring many sample sets in one run cheap.
    """
    classifier = classifier or load_pretrained()
    a = classifier.features(_check_images(samples_uint8, "samples"))
    key = (id(classifier), fingerprint(_check_images(reference_uint8, "reference")))
    if key not in _REFERENCE_STATISTICS:
        _REFERENCE_STATISTICS[key] = feature_statistics(classifier.features(reference_uint8))
    return frechet_distance(*feature_statistics(a), *_REFERENCE_STATISTICS[key])


_REFERENCE_STATISTICS: dict = {}


def classifier_confidence(samples: np.ndarray, classifier: Classifier | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted digit int64 [N], max softmax probability float32 [N]) for uint8 images [N,28,28]."""
    classifier = classifier or load_pretrained()
    return classifier.predict(np.asarray(samples))


#: A sample is "recognised" when the classifier gives some digit at least this probability (the models issue's
#: quality targets are shares of recognised samples).
RECOGNISED_CONFIDENCE = 0.9


def recognised_share(confidence: np.ndarray) -> float:
    """The share of samples whose classifier confidence reaches `RECOGNISED_CONFIDENCE`."""
    return float((np.asarray(confidence) >= RECOGNISED_CONFIDENCE).mean())


#: A sample is handwriting-like when some training digit lies as close to it as to all but this share of test digits.
HANDWRITING_QUANTILE = 0.99


def handwriting_bar(test_nn_distance: np.ndarray, quantile: float = HANDWRITING_QUANTILE) -> float:
    """The distance from a held-out test digit to its nearest training digit that `quantile` of the test digits stay
    within: a sample farther than this from every training digit looks like no handwriting the test set holds."""
    distances = np.asarray(test_nn_distance, dtype=np.float64)
    if distances.ndim != 1 or len(distances) == 0:
        raise ValueError(f"test_nn_distance: expected a non-empty 1-d array, got shape {distances.shape}")
    return float(np.quantile(distances, quantile))


def handwriting_like(nn_distance: np.ndarray, test_nn_distance: np.ndarray) -> np.ndarray:
    """Per sample, True when its nearest training digit is no farther than `handwriting_bar` of the test digits'
    nearest-training distances (both in the same pixel units, both against the same training set)."""
    return np.asarray(nn_distance) <= handwriting_bar(test_nn_distance)
