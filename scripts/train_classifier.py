"""Train the judging classifier on the 60k training digits and commit-ready export it.

    python scripts/train_classifier.py            # -> data/models/classifier/{model.safetensors,manifest.json}

Trains `mnistmem.models.classifier.Classifier` with the project trainer on the training split only, then
measures accuracy on the 10k test digits (evaluation only) and writes the weights (safetensors) and a
manifest (config, accuracies, wall time, git commit, hardware). Fails if test accuracy is below --min-acc.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mnistmem import data
from mnistmem.checkpoints import load_model
from mnistmem.dataspec import DataSpec
from mnistmem.models.pretrained import export
from mnistmem.paths import PACKAGE_DIR
from mnistmem.training import TrainConfig, train

REPO = PACKAGE_DIR.parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "models" / "classifier")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "cache" / "classifier-run")
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-acc", type=float, default=0.99)
    args = parser.parse_args(argv)

    config = TrainConfig(
        model="classifier",
        data=DataSpec(),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=500,
    )
    start = time.time()
    checkpoint = train(config, args.work)
    wall = time.time() - start
    model = load_model(checkpoint, family="classifier")
    test_images, test_labels = data.load_mnist("test")
    train_images, train_labels = data.load_mnist("train")
    test_acc = model.accuracy(test_images, test_labels)
    train_acc = model.accuracy(train_images, train_labels)
    print(f"test accuracy {test_acc:.4f}, train accuracy {train_acc:.4f}, wall {wall:.0f} s")
    if test_acc < args.min_acc:
        print(f"test accuracy {test_acc:.4f} is below --min-acc {args.min_acc}; not exporting", file=sys.stderr)
        return 1
    manifest = export(
        model,
        args.out,
        config=config.to_dict(),
        test_accuracy=test_acc,
        train_accuracy=train_acc,
        wall_time_s=round(wall, 1),
        trained_on="MNIST training split (60,000); test split used only for the accuracy above",
    )
    weights = args.out / "model.safetensors"
    print(json.dumps({k: manifest[k] for k in ("test_accuracy", "parameters", "wall_time_s")}))
    print(f"wrote {weights} ({weights.stat().st_size / 1e3:.0f} kB) and manifest.json")
    print(f"pin it: PINNED_WEIGHTS_SHA256 = {manifest['weights_sha256']!r} in src/mnistmem/models/classifier.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
