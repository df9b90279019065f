"""Train the MNIST copy descriptor on the 60k training digits and export it for committing.

    python scripts/train_descriptor.py          # -> data/models/descriptor/{model.safetensors,manifest.json}

Trains `mnistmem.models.descriptor.Descriptor` with the project trainer (contrastive: each training digit
against a copy degraded by the non-held-out kinds of `mnistmem.degrade`; half of every batch is the other
half's nearest training digits, so that similar handwriting is among the negatives), then checks retrieval
on a fixed set of moderately degraded training digits (every kind, held-out ones included) among all 60,000
training digits, and writes weights and manifest. Its recall against independent handwriting is measured by
the `recall` experiment (`mnistmem reproduce --only recall`), not here. Resumable: rerun after a kill.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mnistmem import data, degrade
from mnistmem.checkpoints import load_model
from mnistmem.dataspec import DataSpec
from mnistmem.models.pretrained import export
from mnistmem.paths import PACKAGE_DIR
from mnistmem.training import TrainConfig, train

REPO = PACKAGE_DIR.parent.parent


def retrieval_check(model, train_images: np.ndarray, n: int = 1000, seed: int = 1) -> dict[str, float]:
    """Share of n moderately degraded training digits (per kind) whose most similar training digit, by the
    descriptor, is their own original. gan_texture is skipped here (it needs GAN samples)."""
    rows = np.random.default_rng(seed).choice(len(train_images), n, replace=False)
    bank = model.embed(train_images)
    out = {}
    for name, kind in degrade.DEGRADATIONS.items():
        if name == "gan_texture":
            continue
        copies = degrade.degrade(
            train_images[rows], name, kind.strength("moderate"), degrade.level_rng(seed, name, "moderate")
        )
        found = (model.embed(copies) @ bank.T).argmax(1)
        out[name] = float((found == rows).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "models" / "descriptor")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "cache" / "descriptor-run")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.05)
    args = parser.parse_args(argv)

    config = TrainConfig(
        model="descriptor",
        data=DataSpec(),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule="cosine",
        warmup_steps=min(200, args.steps // 10),
        seed=args.seed,
        checkpoint_every=250,
        neighbour_pairs=True,
        model_kwargs={"temperature": args.temperature},
    )
    start = time.time()
    checkpoint = train(config, args.work, resume=True)
    wall = time.time() - start
    model = load_model(checkpoint, family="descriptor")
    train_images, _ = data.load_mnist("train")
    retrieval = retrieval_check(model, train_images)
    print("top-1 retrieval of moderately degraded training digits:", json.dumps(retrieval))
    manifest = export(
        model,
        args.out,
        config=config.to_dict(),
        retrieval_top1_moderate=retrieval,
        held_out_degradations=[n for n, d in degrade.DEGRADATIONS.items() if d.held_out],
        wall_time_s_this_run=round(wall, 1),
        trained_on="MNIST training split (60,000); the test split is not used",
    )
    print(f"wrote {args.out} ({manifest['parameters']} parameters)")
    print(f"pin it: PINNED_WEIGHTS_SHA256 = {manifest['weights_sha256']!r} in src/mnistmem/models/descriptor.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
