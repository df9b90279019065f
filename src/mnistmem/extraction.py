"""Getting a work out of a model without having it: completion from a partial image, and membership.

A lawyer's question is whether a work can be *retrieved* from a model by someone who does not already hold
it, not whether a stored seed replays a sample. These are the attacks' building blocks; the experiment that
runs them on the book's models, with positive controls, is `mnistmem.experiments` work of the extraction
issue.

* **Completion** (`complete`): show the model part of a digit (`MASKS`: its top half, left half or a central
  crop) and let it fill in the rest. The diffusion model inpaints with its own sampling loop, the given pixels
  re-imposed at every step (`Diffusion.inpaint`, RePaint without resampling; Lugmayr et al. 2022). A GAN or
  VAE has no such loop: the latent whose image best matches the given pixels is searched by gradient descent
  from several starts (`invert_latent`, the GAN-inversion of Zhu et al. 2016, arXiv 1609.03552), and the
  hidden part is read off its image. `hidden_distance` says how close a completion's hidden part comes to the
  original's, in the pixel units of every copy threshold.
* **Blind extraction** (`blind_candidates`): Carlini et al. (2023)'s generate-and-filter attack. Group
  near-identical samples, call each group's medoid a candidate training image, and score the candidates
  against the exact search of the same samples (precision and recall).
* **Membership** (`membership`): does the model's per-example loss tell its training digits from digits it
  never saw? ROC AUC with a bootstrap interval and the true-positive rate at 1% false positives (the LiRA
  convention, Carlini et al. 2022, arXiv 2112.03570): the EDPB's "probabilistically" (Opinion 28/2024).
"""

from __future__ import annotations

import numpy as np
import torch

from mnistmem.models.base import FamilyModel, seeded_generator, to_model_input, to_uint8

#: Which pixels the prompt shows (True = given): the top half, the left half, the central 14×14 crop.
MASKS = ("top", "left", "centre")


def prompt_mask(kind: str) -> np.ndarray:
    """bool [28, 28]: True where the prompt shows the digit."""
    mask = np.zeros((28, 28), dtype=bool)
    if kind == "top":
        mask[:14] = True
    elif kind == "left":
        mask[:, :14] = True
    elif kind == "centre":
        mask[7:21, 7:21] = True
    else:
        raise ValueError(f"prompt mask must be one of {MASKS}, got {kind!r}")
    return mask


def hidden_distance(completions: np.ndarray, originals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Euclidean distance, over the pixels the prompt hid, between each completion and its original (uint8
    [N,28,28] each; pixel values in [0, 1], the unit of every copy threshold)."""
    hidden = ~np.asarray(mask, dtype=bool)
    a = completions.astype(np.float64)[:, hidden] / 255.0
    b = originals.astype(np.float64)[:, hidden] / 255.0
    return np.sqrt(((a - b) ** 2).sum(axis=1))


def invert_latent(
    model: FamilyModel,
    targets: np.ndarray,
    mask: np.ndarray,
    seed: int = 0,
    starts: int = 4,
    steps: int = 200,
    lr: float = 0.05,
    prior: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each target (uint8 [N,28,28]), the latent of `model` (a GAN or VAE: `from_latent`) whose image
    matches the target's given pixels best: Adam on the squared error over the given pixels plus
    `prior`·|z|² (keeps z where the model's latents lie), from `starts` random latents per target (drawn from
    `seed`), the best kept. Returns (images uint8 [N,28,28], latents [N, latent], given-pixel errors [N])."""
    if not hasattr(model, "from_latent"):
        raise TypeError(f"a {model.family} model has no latent to search; the diffusion model inpaints instead")
    model.eval()
    device = model.device
    n, size = len(targets), model.latent_size
    x = to_model_input(targets, device).repeat_interleave(starts, dim=0)
    given = torch.as_tensor(np.asarray(mask, dtype=bool), device=device).expand_as(x)
    generator = seeded_generator(seed)
    z = torch.randn(n * starts, size, generator=generator).to(device).requires_grad_(True)
    trainable = [p.requires_grad for p in model.parameters()]
    for parameter in model.parameters():
        parameter.requires_grad_(False)  # only the latents move
    try:
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            error = ((model.from_latent(z) - x) ** 2 * given).flatten(1).sum(1)
            (error + prior * (z**2).sum(1)).sum().backward()
            optimizer.step()
        with torch.no_grad():
            images = model.from_latent(z)
            error = ((images - x) ** 2 * given).flatten(1).sum(1).reshape(n, starts)
            best = error.argmin(1)
            rows = torch.arange(n, device=device) * starts + best
            return to_uint8(images[rows]), z[rows].detach().cpu().numpy(), error.min(1).values.cpu().numpy()
    finally:
        for parameter, flag in zip(model.parameters(), trainable, strict=True):
            parameter.requires_grad_(flag)


def complete(model: FamilyModel, originals: np.ndarray, mask: np.ndarray, seed: int = 0, **options) -> np.ndarray:
    """Completions (uint8 [N,28,28]) of the originals shown only where `mask` is True: the diffusion model
    inpaints (`options`: `steps`), a GAN or VAE searches its latent (`options`: those of `invert_latent`)."""
    if model.family == "diffusion":
        generators = [seeded_generator(seed * 1_000_003 + i) for i in range(len(originals))]
        known = to_model_input(originals, model.device)
        with torch.inference_mode():
            return to_uint8(model.eval().inpaint(generators, known, torch.from_numpy(np.asarray(mask)), **options))
    return invert_latent(model, originals, mask, seed=seed, **options)[0]


def membership(member_losses: np.ndarray, outsider_losses: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """How well a model's per-example loss tells training digits (`member_losses`) from digits it never saw
    (`outsider_losses`); lower loss = "was trained on". ROC AUC (0.5 = no signal) with a 95% bootstrap
    interval (`resamples` resamplings of both sets, fixed `seed`), and the true-positive rate at a 1%
    false-positive rate."""
    from sklearn.metrics import roc_auc_score, roc_curve

    members, outsiders = np.asarray(member_losses, float), np.asarray(outsider_losses, float)
    if len(members) < 2 or len(outsiders) < 2:
        raise ValueError(f"need at least 2 members and 2 outsiders, got {len(members)} and {len(outsiders)}")
    labels = np.r_[np.ones(len(members)), np.zeros(len(outsiders))]
    scores = -np.r_[members, outsiders]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        a = rng.choice(members, len(members))
        b = rng.choice(outsiders, len(outsiders))
        boot.append(roc_auc_score(labels, -np.r_[a, b]))
    fpr, tpr, _ = roc_curve(labels, scores)
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "auc_low": float(np.quantile(boot, 0.025)),
        "auc_high": float(np.quantile(boot, 0.975)),
        "tpr_at_1pct_fpr": float(tpr[np.searchsorted(fpr, 0.01, side="right") - 1]),
        "members": len(members),
        "outsiders": len(outsiders),
    }


def blind_candidates(
    samples: np.ndarray, train: np.ndarray, bar: float, radius: float, min_size: int, top: int
) -> dict:
    """Generate-and-filter on `samples` (uint8 [N,28,28]) without looking at `train` until the end: groups of
    samples linked by distances below `radius` with at least `min_size` members (`storage.clusters`), the
    `top` largest, each represented by its medoid (`storage.medoid`). Then, and only to score the attack: a
    candidate is a hit when its medoid lies within `bar` (pixel distance) of a training image; precision is the
    share of hits, recall the share of the distinct training images that the samples copy (some sample within
    `bar`, by exact search) which a hit names."""
    from mnistmem.experiments.storage import clusters, medoid
    from mnistmem.neighbors import knn

    distance, index = knn(samples, train, k=1, progress=False)
    copied = {int(i) for i, d in zip(index[:, 0], distance[:, 0], strict=True) if d <= bar}
    candidates = []
    for group in clusters(samples, radius, min_size)[:top]:
        centre = int(group[medoid(samples[group])])
        candidates.append(
            {
                "size": len(group),
                "medoid": centre,
                "nearest": int(index[centre, 0]),
                "distance": float(distance[centre, 0]),
            }
        )
    found = {c["nearest"] for c in candidates if c["distance"] <= bar}
    hits = sum(c["distance"] <= bar for c in candidates)
    return {
        "n": len(samples),
        "bar": bar,
        "candidates": candidates,
        "precision": hits / len(candidates) if candidates else None,
        "hits": hits,
        "named": len(found & copied),
        "copied_by_exact_search": len(copied),
        "recall": len(found & copied) / len(copied) if copied else None,
    }
