"""Storage: are the reproduced images' bits in the weights, and can an outsider extract them?

Question: (1) how many bits do a model's parameters hold, against the bits of the distinct training images
it reproduces (each counted at its losslessly compressed PNG size)? (2) Without the training data, can one
find memorised images by generating many samples and looking for clusters of near-identical ones
(Carlini et al. 2023's generate-and-filter attack), and how many such clusters are real training images?
Expected: the reproduced bits are a small fraction of the weights' capacity (so storage is possible), and
clusters of near-identical samples are mostly real training images where copying happens at all.

A cluster is judged by its medoid (`medoid`: the member closest, in summed distance, to the other members),
the sample that best stands for the group; it counts as a real training image when the medoid's nearest
training image lies within the cluster radius. Each cluster's record also names the medoid's nearest training
image and distance, and the closest distance of any member to that training image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mnistmem.experiments.runner import Experiment, Stage, StageContext

#: Two samples belong together when closer than this (the `l2` copy threshold, pixel units).
CLUSTER_DISTANCE = 0.75
MIN_CLUSTER = 3
#: Which member stands for a cluster when it is checked against the training set (recorded in the stage's
#: config, so results computed with another rule are recomputed rather than reused).
REPRESENTATIVE = "medoid"
#: Rows of the within-cluster distance matrix computed at once in `medoid` (bounds its memory).
_MEDOID_BLOCK = 1024


def png_bits(image: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG", optimize=True)
    return 8 * len(buffer.getvalue())


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


def _pixel_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the images of `a` and of `b` (uint8), in [0,1] pixel units, [len(a), len(b)],
    from the exact integer squared distances of `neighbors.squared_byte_distances`."""
    from mnistmem.neighbors import squared_byte_distances

    return np.sqrt(squared_byte_distances(a, b)) / 255.0


def medoid(images: np.ndarray) -> int:
    """Position in `images` (uint8, one cluster's members) of its medoid: the member whose summed distance
    (Euclidean, [0,1] pixel units) to the other members is smallest; ties go to the earlier member.

    The medoid is the member that best stands for the whole group (Kaufman & Rousseeuw 1990, "Finding groups
    in data", ch. 2). A cluster's members come in sample order, so its first member is an arbitrary one: it
    may sit at the edge of the group, farther from the training image the group gathers around than most."""
    if len(images) == 0:
        raise ValueError("medoid of an empty cluster")
    sums = np.concatenate(
        [_pixel_distances(images[i : i + _MEDOID_BLOCK], images).sum(1) for i in range(0, len(images), _MEDOID_BLOCK)]
    )
    return int(np.argmin(sums))


def match_clusters(images: np.ndarray, groups: list[np.ndarray], train: np.ndarray, radius: float) -> dict:
    """Check each cluster of samples (`groups`: indices into `images`) against the training set through its
    medoid: a cluster matches a training image when the medoid's nearest training image lies within `radius`.

    Returns, per cluster in the order of `groups`: the medoid's sample index, its nearest training index and
    distance, and the closest distance of any member to that training image; and the number of matches."""
    from mnistmem.neighbors import knn

    medoids = np.array([g[medoid(images[g])] for g in groups], dtype=np.int64)
    if len(medoids):
        distance, index = knn(images[medoids], train, k=1, progress=False)
        distance, index = distance[:, 0], index[:, 0]
    else:
        distance, index = np.zeros(0), np.zeros(0, np.int64)
    closest = [float(_pixel_distances(images[g], train[[i]]).min()) for g, i in zip(groups, index, strict=True)]
    return {
        "clusters_matching_training_images": int((distance <= radius).sum()),
        "cluster_medoid": medoids.tolist(),
        "cluster_training_index": index.tolist(),
        "cluster_medoid_distance": distance.tolist(),
        "cluster_closest_member_distance": closest,
    }


def storage_stage(ctx: StageContext) -> dict:
    from mnistmem import copies, data
    from mnistmem.experiments.randomness import scored_models
    from mnistmem.experiments.stages import drawn_from

    train, _ = data.load_mnist("train")
    rows = []
    for experiment, name, sample in scored_models(ctx):
        result = ctx.upstream(experiment)
        model = name.removeprefix("score_")
        table = result.table(name)
        images, _ = result.samples(sample)
        source, stage, _ = drawn_from(result, sample)
        parameters, bits = source.sampler_size(stage)
        copied = np.unique(copies.nearest_under(table, copies.HEADLINE)[table.flags[copies.HEADLINE]])
        reproduced_bits = int(sum(png_bits(train[i]) for i in copied))
        groups = clusters(images, ctx.config["radius"], ctx.config["min_cluster"])
        matched = match_clusters(images, groups, train, ctx.config["radius"])
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
                "clusters_matching_training_images": matched.pop("clusters_matching_training_images"),
                **{key: values[:50] for key, values in matched.items()},
            }
        )
    return {"models": rows}


def plan(scale: str) -> list[Stage]:
    from mnistmem.copies import HEADLINE

    config = {
        "radius": CLUSTER_DISTANCE,
        "min_cluster": MIN_CLUSTER,
        "representative": REPRESENTATIVE,
        "copies_by": HEADLINE,  # which samples count as copies of a training image (bits reproduced)
    }
    return [Stage("storage", config, storage_stage)]


EXPERIMENT = Experiment(
    name="storage",
    question="Do the weights hold the bits of the images they reproduce, and can clusters of samples reveal them?",
    plan=plan,
    requires=("calibration", "main", "small"),
)
