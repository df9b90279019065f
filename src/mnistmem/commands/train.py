"""`mnistmem train`: train a GAN, VAE, diffusion model or classifier into a run directory (resumable).

Examples:
    mnistmem train --model diffusion --out runs/diff-1k --n 1000 --steps 3000
    mnistmem train --model gan --out runs/gan-canary --canary copyright:100 --canary section:10
    mnistmem train --config runs/diff-1k/config.json --out runs/diff-1k      # resume a killed run
    mnistmem train --config runs/diff-1k/config.json --init-from runs/diff-1k --exclude 17 --steps 200 \
        --out runs/diff-1k-finetuned                                          # continue it on other data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnistmem.models import FAMILIES

_UNSET = "unset"


def _ema(text: str) -> float | str | None:
    if text.lower() in ("none", "off", "no"):
        return None
    if text in ("auto", _UNSET):
        return text
    return float(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("--model", help=f"model family: one of {', '.join(FAMILIES)} (or from --config)")
    parser.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, config, metrics)")
    parser.add_argument("--config", type=Path, help="a TrainConfig JSON (e.g. a run's config.json); flags override it")
    parser.add_argument("--model-kwargs", help="JSON of size options, e.g. '{\"channels\": [32, 64, 64]}'")
    parser.add_argument(
        "--init-from",
        type=Path,
        help="start from this checkpoint (or run folder: its latest) — weights, optimizer state and EMA — "
        "and train --steps more on the data given here (fine-tuning; the same family and size options)",
    )
    data = parser.add_argument_group("training data")
    data.add_argument("--n", type=int, help="number of training digits (default: all 60,000)")
    data.add_argument("--data-seed", type=int, help="seed of the subset draw (default 0)")
    data.add_argument("--exclude", help="comma-separated training indices to leave out (unlearning)")
    data.add_argument("--canary", action="append", metavar="GLYPH:COUNT", help="add a canary, e.g. copyright:100")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--steps", type=int)
    opt.add_argument("--batch-size", type=int)
    opt.add_argument("--lr", type=float, help="learning rate (default: the family's)")
    opt.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    opt.add_argument("--seed", type=int)
    opt.add_argument("--ema", type=_ema, default=_UNSET, help="EMA decay, 'none', or 'auto' (family default)")
    ck = parser.add_argument_group("checkpoints")
    ck.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 500)")
    ck.add_argument("--checkpoint-minutes", type=float, help="also checkpoint after this many minutes (default 10)")
    ck.add_argument("--keep-every", type=int, help="keep checkpoints whose step is a multiple of this")
    parser.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace):
    """A TrainConfig from --config and the flags (flags win)."""
    from mnistmem.dataspec import CanarySpec, DataSpec
    from mnistmem.training import TrainConfig

    values: dict = {}
    if args.config is not None:
        try:
            values = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"--config {args.config}: cannot read JSON ({error})") from error
    flags = {
        "model": args.model,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "precision": args.precision,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "checkpoint_minutes": args.checkpoint_minutes,
        "keep_every": args.keep_every,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.init_from is not None:
        values.update(init_from=str(args.init_from), init_digest=None)
    if args.ema != _UNSET:
        values["ema"] = args.ema
    if args.model_kwargs:
        try:
            values["model_kwargs"] = json.loads(args.model_kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(f"--model-kwargs must be JSON ({error})") from error
    if "model" not in values:
        raise ValueError(f"--model is required (one of {', '.join(FAMILIES)}) unless --config gives it")
    spec = values.get("data", {})
    if isinstance(spec, dict):
        spec = dict(spec)
        if args.n is not None:
            spec["n"] = args.n
        if args.data_seed is not None:
            spec["seed"] = args.data_seed
        if args.exclude:
            try:
                spec["exclude"] = [int(i) for i in args.exclude.split(",") if i.strip()]
            except ValueError as error:
                raise ValueError(f"--exclude must be comma-separated integers, got {args.exclude!r}") from error
        if args.canary:
            spec["canaries"] = [CanarySpec.parse(c).__dict__ for c in args.canary]
        values["data"] = DataSpec.from_dict(spec)
    return TrainConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from mnistmem.training import train

    if args.out.exists() and not args.out.is_dir():
        print(
            f"mnistmem train: --out {args.out} is a file; name a folder for the run (checkpoints, config, metrics)",
            file=sys.stderr,
        )
        return 2
    try:
        config = build_config(args)
        final = train(config, args.out, resume=not args.no_resume, progress=not args.no_progress)
    except ValueError as error:  # ConfigError, DataSpecError, UnknownModelError, CheckpointError
        print(f"mnistmem train: error: {error}", file=sys.stderr)
        return 2
    print(f"finished: {final}")
    return 0
