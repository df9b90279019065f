"""Meehan, Chaudhuri & Dasgupta's data-copying test C_T (AISTATS 2020, arXiv 2004.05675).

A model-level test: does the model put its samples *closer* to the training set than fresh data from the
same distribution is? Space is partitioned into cells by k-means on the training set; in each cell the
distances from generated samples to their nearest training image are compared with those of held-out
(test) images by a Mann-Whitney U test, Z-scored; C_T is the average of the cells' Z-scores weighted by the
share of test images in each cell. C_T << 0 means data copying, C_T >> 0 underfitting, ~0 neither.

Conventions follow the authors' reference implementation (github.com/casey-meehan/data-copying,
`data_copying_tests.py`, functions `Zu`, `Zu_cells`, `C_T`):
- cells: `KMeans(n_clusters).fit(train)`, with generated and test images assigned by `predict`;
- in each cell, distances are to the nearest training image *of the same cell*;
- U = `scipy.stats.mannwhitneyu(generated, test).statistic` (pairs where a generated distance exceeds a
  test distance), Z = (U - (n·m/2 - 0.5)) / sqrt(n·m·(n+m+1)/12), the 0.5 being their continuity correction;
- cells with at most `tau·m` generated samples are skipped (their experiments use tau = 20/m, i.e. a cell
  needs more than 20 generated samples), and the remaining cells are weighted by their share of test images.
Deviation: the paper's MNIST experiment works in a 64-d autoencoder latent space; here cells and distances
are in pixel space ([0,1] units, exact search), the space in which the book judges copies. The paper used 50
cells for MNIST, which is the default here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans

from mnistmem.neighbors import knn, to_uint8

#: a cell counts only with more than this many generated samples (Meehan et al.: tau = 20 / m)
MIN_GENERATED_PER_CELL = 20


@dataclass
class CTResult:
    """C_T and its ingredients, per cell (cells are k-means clusters of the training images)."""

    c_t: float
    cell_z: np.ndarray  # float64 [cells], NaN where a cell had no generated or no test sample
    cell_test_share: np.ndarray  # float64 [cells], share of test images in each cell (the weights)
    cell_generated_count: np.ndarray  # int64 [cells]
    cell_used: np.ndarray  # bool [cells], cells with more than MIN_GENERATED_PER_CELL generated samples
    n_cells: int
    min_generated_per_cell: int
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "c_t": self.c_t,
            "cell_z": [None if not np.isfinite(z) else float(z) for z in self.cell_z],
            "cell_test_share": self.cell_test_share.tolist(),
            "cell_generated_count": self.cell_generated_count.tolist(),
            "cell_used": self.cell_used.tolist(),
            "n_cells": self.n_cells,
            "min_generated_per_cell": self.min_generated_per_cell,
        }


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def fit_cells(train_images: np.ndarray, n_cells: int = 50, seed: int = 0) -> KMeans:
    """k-means cells on the training images (pixel space, [0,1] units)."""
    return KMeans(n_clusters=n_cells, n_init=1, random_state=seed).fit(_flat(to_uint8(train_images, "train")))


def mann_whitney_z(generated_distances: np.ndarray, test_distances: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of generated vs test distances, as in Meehan et al.'s `Zu`."""
    m, n = len(generated_distances), len(test_distances)
    u = mannwhitneyu(generated_distances, test_distances, alternative="less").statistic
    mean = n * m / 2 - 0.5
    std = np.sqrt(n * m * (n + m + 1) / 12)
    return float((u - mean) / std)


def c_t_test(
    generated: np.ndarray,
    test_images: np.ndarray,
    train_images: np.ndarray,
    n_cells: int = 50,
    seed: int = 0,
    cells: KMeans | None = None,
    min_generated_per_cell: int = MIN_GENERATED_PER_CELL,
) -> CTResult:
    """Meehan et al.'s C_T for `generated` images against held-out `test_images`, cells fit on the train set.

    Pass a fitted `cells` (from `fit_cells`) to reuse the partition across models.
    """
    gen = to_uint8(generated, "generated")
    test = to_uint8(test_images, "test_images")
    train = to_uint8(train_images, "train_images")
    if cells is None:
        cells = fit_cells(train, n_cells, seed)
    n_cells = cells.n_clusters
    train_cell = cells.predict(_flat(train))
    gen_cell = cells.predict(_flat(gen))
    test_cell = cells.predict(_flat(test))
    z = np.full(n_cells, np.nan)
    gen_count = np.bincount(gen_cell, minlength=n_cells).astype(np.int64)
    test_share = np.bincount(test_cell, minlength=n_cells) / len(test)
    for c in range(n_cells):
        in_train = np.flatnonzero(train_cell == c)
        g, t = gen[gen_cell == c], test[test_cell == c]
        if len(in_train) == 0 or len(g) == 0 or len(t) == 0:
            continue
        dg = knn(g, train[in_train], k=1, progress=False)[0][:, 0]
        dt = knn(t, train[in_train], k=1, progress=False)[0][:, 0]
        z[c] = mann_whitney_z(dg, dt)
    used = (gen_count > min_generated_per_cell) & np.isfinite(z)
    weights = test_share[used]
    c_t = float(weights @ z[used] / weights.sum()) if weights.sum() > 0 else float("nan")
    return CTResult(c_t, z, test_share, gen_count, used, n_cells, min_generated_per_cell)
