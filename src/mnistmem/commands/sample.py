"""`mnistmem sample`: generate images from a trained model, saving each image's own seed.

Examples:
    mnistmem sample runs/diff-1k --n 1000 --seed 0 --out samples.npz
    mnistmem sample runs/diff-cond --n 100 --label 7 --out sevens.npz --quality
    mnistmem sample runs/diff-1k --regenerate 4294967301 --out one.npz   # one sample, from its seed

The .npz holds `images` (uint8 [n,28,28]), `seeds` (int64 [n]) and `meta` (JSON: checkpoint, options);
read it with `numpy.load(path, allow_pickle=False)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("checkpoint", type=Path, help="a run directory (latest checkpoint) or checkpoints/step_N")
    parser.add_argument("--n", type=int, default=64, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="run seed; sample i gets seed * 2**32 + i")
    parser.add_argument("--batch-size", type=int, default=64, help="fixed micro-batch (pass the same to regenerate)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz")
    parser.add_argument("--label", type=int, help="class to draw (class-conditional diffusion only)")
    parser.add_argument("--sampler", choices=["dpm", "ddim"], help="diffusion sampler (default dpm)")
    parser.add_argument("--steps", type=int, help="diffusion sampling steps (default 20 dpm / 50 ddim)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (conditional diffusion)")
    parser.add_argument("--regenerate", type=int, metavar="SAMPLE_SEED", help="recompute one sample from its seed")
    parser.add_argument("--no-ema", action="store_true", help="use the training weights instead of the EMA")
    parser.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--quality", action="store_true", help="print MNIST-FID vs test digits and confidence")
    parser.add_argument("--no-progress", action="store_true")


#: bytes one sample needs while it is made and stored (image, seed, the float batch it comes from, slack)
_BYTES_PER_SAMPLE = 28 * 28 + 8 + 4 * 28 * 28 * 4


def check_arguments(args: argparse.Namespace) -> str | None:
    """The first thing wrong with the arguments, as one line naming the option and the fix (None if fine).

    Checked before any model is loaded, so a bad option costs nothing."""
    import math
    import os

    if args.out.is_dir():
        return f"--out {args.out} is a folder; name a file, e.g. --out {args.out / 'samples.npz'}"
    if args.regenerate is None and args.n < 1:
        return f"--n must be at least 1, got {args.n}"
    if args.batch_size < 1:
        return f"--batch-size must be at least 1, got {args.batch_size}"
    if not 0 <= args.seed <= 2**31 - 1:
        return f"--seed must be in 0..{2**31 - 1}, got {args.seed}"
    if args.regenerate is not None and args.regenerate < 0:
        return f"--regenerate takes a per-sample seed (seed * 2**32 + i, never negative), got {args.regenerate}"
    if args.steps is not None and args.steps < 1:
        return f"--steps must be at least 1, got {args.steps}"
    if args.guidance is not None and not (math.isfinite(args.guidance) and args.guidance >= 0):
        return f"--guidance must be a finite number >= 0, got {args.guidance}"
    need = (1 if args.regenerate is not None else args.n) * _BYTES_PER_SAMPLE
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # free memory (Linux, macOS)
    except (ValueError, OSError, AttributeError):
        available = None
    if available is not None and need > available // 2:
        return (
            f"--n {args.n:,} needs about {need / 2**30:.1f} GiB, more than half of the {available / 2**30:.1f} GiB "
            "free; draw fewer samples per call (use --seed to continue where a call stopped)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    from mnistmem.checkpoints import CheckpointError, load_model
    from mnistmem.devices import pick_device
    from mnistmem.sampling import regenerate, sample

    problem = check_arguments(args)
    if problem is not None:
        print(f"mnistmem sample: {problem}", file=sys.stderr)
        return 2

    options = {
        k: v
        for k, v in {"sampler": args.sampler, "steps": args.steps, "guidance": args.guidance}.items()
        if v is not None
    }
    try:
        model = load_model(args.checkpoint, device=pick_device(args.device), ema=not args.no_ema)
        ignored = [f"--{k}" for k in options] + (["--label"] if args.label is not None else [])
        if ignored and model.family != "diffusion":
            print(
                f"mnistmem sample: {', '.join(ignored)} apply to diffusion models only; this is a {model.family}",
                file=sys.stderr,
            )
            return 2
        start = time.perf_counter()
        if args.regenerate is not None:
            images = regenerate(model, args.regenerate, batch_size=args.batch_size, label=args.label, **options)[None]
            seeds = np.array([args.regenerate], dtype=np.int64)
        else:
            images, seeds = sample(
                model,
                args.n,
                args.seed,
                batch_size=args.batch_size,
                progress=not args.no_progress,
                label=args.label,
                **options,
            )
        elapsed = time.perf_counter() - start
    except (CheckpointError, ValueError, TypeError) as error:
        print(f"mnistmem sample: error: {error}", file=sys.stderr)
        return 2
    meta = {
        "checkpoint": str(model.checkpoint),
        "family": model.family,
        "step": model.step,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "label": args.label,
        "ema": not args.no_ema,
        "options": options,
        "device": str(model.device),
        "images_per_s": len(images) / elapsed,
    }
    from mnistmem.atomic import write_atomic

    write_atomic(
        args.out,
        lambda handle: np.savez_compressed(handle, images=images, seeds=seeds, meta=np.array(json.dumps(meta))),
    )
    print(f"wrote {len(images)} samples to {args.out} ({meta['images_per_s']:.1f} images/s)")
    if args.quality:
        from mnistmem import data
        from mnistmem.quality import classifier_confidence, mnist_fid

        test_images, _ = data.load_mnist("test")
        _, confidence = classifier_confidence(images)
        print(f"MNIST-FID vs test digits: {mnist_fid(images, test_images):.2f}")
        print(f"mean classifier confidence {confidence.mean():.3f}; share >= 0.9: {(confidence >= 0.9).mean():.3f}")
    return 0
