"""Storage: are the reproduced images' bits in the weights, and can an outsider extract them?

Question: (1) how many bits do a model's parameters hold, against the bits of the distinct training images
it reproduces (each counted at its losslessly compressed PNG size)? (2) Without the training data, can one
find memorised images by generating many samples and looking for clusters of near-identical ones
(Carlini et al. 2023's generate-and-filter attack), and how many such clusters are real training images?
Expected: the reproduced bits are a small fraction of the weights' capacity (so storage is possible), and
clusters of near-identical samples are mostly real training images where copying happens at all.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mnistmem.experiments.runner import Experiment, Stage, StageContext
from mnistmem.experiments.stages import MODEL_DIR, SAMPLES_FILE, TABLE_FILE, load_samples

#: Two samples belong together when closer than this (the `l2` copy threshold, pixel units).
CLUSTER_DISTANCE = 0.75
MIN_CLUSTER = 3


def png_bits(image: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG", optimize=True)
    return 8 * len(buffer.getvalue())


def sampler_size(model) -> tuple[int, int]:
    """(parameters, bits) of the part of a model that draws samples (a GAN's generator, a VAE's decoder, a
    diffusion model's U-Net): everything consulted when a sample is made, and nothing else."""
    sampler = model.sampling_module() if hasattr(model, "sampling_module") else (model.ema_module() or model)
    tensors = list(sampler.parameters()) + list(sampler.buffers())
    return sum(t.numel() for t in tensors), sum(t.numel() * t.element_size() * 8 for t in tensors)


def weight_bits(model_dir) -> tuple[int, int]:
    """`sampler_size` of the trained model saved in `model_dir`."""
    from mnistmem import checkpoints

    return sampler_size(checkpoints.load_model(model_dir))


def clusters(images: np.ndarray, radius: float, min_size: int) -> list[np.ndarray]:
    """Groups of samples linked by distances below `radius` (connected components), largest first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from mnistmem.neighbors import knn

    k = min(10, len(images))
    distance, index = knn(images, images, k=k, progress=False)
    rows = np.repeat(np.arange(len(images)), k)
    keep = (distance.ravel() < radius) & (index.ravel() != rows)
    graph = coo_matrix((np.ones(keep.sum()), (rows[keep], index.ravel()[keep])), shape=(len(images),) * 2)
    _, labels = connected_components(graph, directed=False)
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    return sorted([g for g in groups if len(g) >= min_size], key=len, reverse=True)


def storage_stage(ctx: StageContext) -> dict:
    from mnistmem import data, tables
    from mnistmem.neighbors import knn

    train, _ = data.load_mnist("train")
    rows = []
    for experiment in ("main", "size"):
        result = ctx.upstream(experiment)
        for name in result.manifest["stages"]:
            if not name.startswith("score_"):
                continue
            model = name.removeprefix("score_")
            table = tables.load_table(result.path(name, TABLE_FILE))
            images, _ = load_samples(result.path(f"sample_{model}", SAMPLES_FILE))
            parameters, bits = weight_bits(result.path(f"train_{model}", MODEL_DIR))
            copied = np.unique(table.nn_index[table.flags["nn_ratio"], 0])
            reproduced_bits = int(sum(png_bits(train[i]) for i in copied))
            groups = clusters(images, ctx.config["radius"], ctx.config["min_cluster"])
            medoids = np.array([g[0] for g in groups], dtype=np.int64)
            if len(medoids):
                d, idx = knn(images[medoids], train, k=1, progress=False)
                real = d[:, 0] <= ctx.config["radius"]
            else:
                idx, real = np.zeros((0, 1), np.int64), np.zeros(0, bool)
            rows.append(
                {
                    "experiment": experiment,
                    "model": model,
                    "parameters": int(parameters),
                    "weight_bits": int(bits),
                    "copied_training_images": len(copied),
                    "reproduced_bits": reproduced_bits,
                    "reproduced_share_of_weight_bits": reproduced_bits / max(bits, 1),
                    "clusters": len(groups),
                    "cluster_sizes": [len(g) for g in groups][:50],
                    "clusters_matching_training_images": int(real.sum()),
                    "cluster_training_index": idx[:, 0].tolist()[:50],
                }
            )
    return {"models": rows}


def plan(scale: str) -> list[Stage]:
    return [Stage("storage", {"radius": CLUSTER_DISTANCE, "min_cluster": MIN_CLUSTER}, storage_stage)]


EXPERIMENT = Experiment(
    name="storage",
    question="Do the weights hold the bits of the images they reproduce, and can clusters of samples reveal them?",
    plan=plan,
    requires=("calibration", "main", "size"),
)
