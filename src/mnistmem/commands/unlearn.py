"""`mnistmem unlearn --method {retrain,sisa,finetune,neggrad,diff} --forget SOURCE [...]`: train a small
diffusion model on a data spec, make it forget one item, and report how often samples still reproduce it.

SOURCE is a training index (a digit, e.g. 1234) or `canary` (the first canary of the spec). The data spec is
`--n` digits (drawn with `--data-seed`) plus `--canary GLYPH:COUNT`. Everything runs here, at the sizes given
(defaults are tiny, for a quick look); `mnistmem reproduce --only unlearning` runs the book's full comparison.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from mnistmem.unlearn import METHODS


class UnlearnArgumentError(ValueError):
    """An option `mnistmem unlearn` cannot use; the message names it and the fix (printed as one line)."""


#: options that count something and must be at least 1
_AT_LEAST_ONE = ("n", "steps", "unlearn_steps", "batch_size", "shards", "slices", "samples", "sampler_steps")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a bad option before any training starts (the original model alone takes minutes)."""
    for name in _AT_LEAST_ONE:
        value = getattr(args, name)
        if value < 1:
            raise UnlearnArgumentError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.method == "sisa" and args.steps < args.slices:
        raise UnlearnArgumentError(
            f"--steps {args.steps} is fewer than --slices {args.slices}: SISA trains every slice at least one step"
        )
    if args.out is not None and args.out.is_dir():
        raise UnlearnArgumentError(f"--out {args.out} is a folder. Fix: name a file, e.g. {args.out / 'report.json'}")
    parse_channels(args.channels)


def parse_channels(text: str) -> list[int]:
    """`--channels` as the UNet's three widths, or the error naming the option."""
    try:
        channels = [int(c) for c in text.split(",")]
    except ValueError:
        channels = []
    if len(channels) != 3 or min(channels) < 1:
        raise UnlearnArgumentError(f"--channels takes three positive integers such as 8,16,16, got {text!r}")
    return channels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, required=True, help="how to forget")
    parser.add_argument("--forget", required=True, help="a training index, or 'canary'")
    parser.add_argument("--n", type=int, default=100, help="training digits (default 100)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument(
        "--canary", default="copyright:20", help="GLYPH:COUNT planted in the data (default copyright:20)"
    )
    parser.add_argument("--channels", default="8,16,16", help="UNet channels at 28, 14, 7 pixels")
    parser.add_argument("--steps", type=int, default=200, help="training steps of the original model")
    parser.add_argument("--unlearn-steps", type=int, default=50, help="fine-tune / NegGrad steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shards", type=int, default=2, help="SISA shards")
    parser.add_argument("--slices", type=int, default=2, help="SISA slices per shard")
    parser.add_argument("--samples", type=int, default=64, help="samples drawn to check for the item")
    parser.add_argument("--sampler-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")


def _source(text: str, spec) -> int:
    if text == "canary":
        if not spec.canaries:
            raise UnlearnArgumentError("--forget canary needs a --canary in the data")
        return -1
    if not text.lstrip("-").isdigit():
        raise UnlearnArgumentError(f"--forget must be a training index or 'canary', got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mnistmem import checkpoints, sampling
    from mnistmem import data as mnist
    from mnistmem.canaries import render_canaries
    from mnistmem.dataspec import CanarySpec, DataSpec, DataSpecError
    from mnistmem.training import TrainConfig
    from mnistmem.unlearn import ItemError, diff, finetune, item_image, measures, neggrad, retrain, run, sisa

    check_arguments(args)
    try:
        spec = DataSpec(n=args.n, seed=args.data_seed, canaries=(CanarySpec.parse(args.canary),) if args.canary else ())
    except (DataSpecError, ValueError) as error:
        raise UnlearnArgumentError(f"{error}") from None
    source = _source(args.forget, spec)
    data = spec.build()
    try:
        image = item_image(data, source)
    except ItemError as error:
        raise UnlearnArgumentError(f"{error}. Fix: pick an index from the spec's digits or 'canary'") from None
    original = TrainConfig(
        model="diffusion",
        model_kwargs={"channels": parse_channels(args.channels)},
        data=spec,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=0,
        checkpoint_every=args.steps,
    )
    sampler = {"steps": args.sampler_steps}

    def check(models, weights=None) -> dict:
        train, _ = mnist.load_mnist("train")
        ref = measures.reference_set(train, render_canaries([c.glyph for c in spec.canaries]))
        images, _, _ = sampling.sample_mixture(models, weights, args.samples, seed=1, progress=False, **sampler)
        distance, index = measures.nearest(images, ref)
        row = measures.reference_index(source, len(train))
        return measures.reproduction(images, image, row, distance, index)

    report: dict = {"method": args.method, "forget": source, "rows": len(data)}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if args.method == "sisa":
            layout, cost = sisa.train(original, args.shards, args.slices, args.steps, 0, folder / "a")
            sizes = sisa.shard_sizes(original, args.shards, args.slices, 0)
            report["before"] = check(sisa.load_models(layout), sizes)
            new, forget_cost, info = sisa.forget(layout, original, source, args.steps, 0, folder / "b")
            report.update(info, train_cost=cost.to_dict(), cost=forget_cost.to_dict())
            report["after"] = check(sisa.load_models(new), sizes)
        else:
            base, base_cost = run(original, folder / "base")
            report["train_cost"] = base_cost.to_dict()
            report["before"] = check([checkpoints.load_model(base)])
            if args.method == "retrain":
                final, cost = retrain(original, source, folder / "retrain")
            elif args.method == "finetune":
                final, cost = finetune(original, base, source, args.unlearn_steps, 1, folder / "finetune")
            elif args.method == "neggrad":
                final, cost = neggrad(original, base, source, args.unlearn_steps, 1, folder / "neggrad")
            else:  # diff: retrain, subtract, add the difference to a model trained with another seed
                retrained, cost = retrain(original, source, folder / "retrain")
                other, other_cost = run(replace(original, seed=1), folder / "other_seed")
                base_model, other_model = checkpoints.load_model(base), checkpoints.load_model(other)
                delta = diff.difference(checkpoints.load_model(retrained), base_model)
                report["norms"] = diff.layer_norms(delta, diff.weights(base_model))[-1]
                report["other_seed_before"] = check([other_model])
                report["after"] = check([diff.apply(other_model, delta)])
                cost = cost + other_cost
                final = None
            if final is not None:
                report["after"] = check([checkpoints.load_model(final)])
            report["cost"] = cost.to_dict()
    for key in ("before", "after"):
        report[key].pop("hit_samples", None)
    text = json.dumps(report, indent=2, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0
