"""Committed networks that judge samples (the classifier, the copy descriptor): found, hash-checked, loaded.

Each lives in `data/models/<name>/` as `model.safetensors` plus `manifest.json` (config, accuracy, commit,
hardware) and loads only when the weights' SHA-256 equals the hash pinned in its module: these weights
define measurements in the book (MNIST-FID, the recognised share, two copy criteria), so a changed file must
never be used silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from mnistmem.models.base import FamilyModel
from mnistmem.paths import PACKAGE_DIR, data_dir

FILES = ("model.safetensors", "manifest.json")


def pretrained_dir(name: str) -> Path:
    """`$MNISTMEM_DATA/models/<name>` if set and present, else the repository's `data/models/<name>`, else
    `<data dir>/models/<name>`."""
    candidates = []
    if os.environ.get("MNISTMEM_DATA"):
        candidates.append(data_dir() / "models" / name)
    candidates.append(PACKAGE_DIR.parent.parent / "data" / "models" / name)
    candidates.append(data_dir() / "models" / name)
    for candidate in candidates:
        if (candidate / FILES[0]).exists():
            return candidate
    return candidates[0]


_loaded: dict[str, FamilyModel] = {}


def load_pinned(
    name: str,
    model_class: type[FamilyModel],
    pinned_sha256: str,
    train_command: str,
    path: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> FamilyModel:
    """The committed `name` network (eval mode, cached per process), refused unless its hash is pinned.

    `path` (a folder) skips the hash check: for a network just trained by `train_command`, before pinning.
    """
    from safetensors.torch import load_file

    from mnistmem.integrity import sha256_file

    folder = Path(path) if path is not None else pretrained_dir(name)
    key = f"{name}|{folder.resolve()}|{device}"
    if key in _loaded:
        return _loaded[key]
    weights, manifest_path = folder / FILES[0], folder / FILES[1]
    if not weights.exists() or not manifest_path.exists():
        raise FileNotFoundError(
            f"no pretrained {name} in {folder} (needs {', '.join(FILES)}). "
            f"Fix: run `{train_command}` from the repository root."
        )
    found = sha256_file(weights) if path is None else pinned_sha256
    if found != pinned_sha256:
        raise ValueError(
            f"{weights} has SHA-256 {found[:16]}…, pinned {pinned_sha256[:16]}…: refused. "
            f"Fix: git checkout {weights}, or retrain with `{train_command}` and pin its new hash in "
            f"{model_class.__module__}"
        )
    manifest = json.loads(manifest_path.read_text())
    model = model_class(**manifest["model_kwargs"])
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as error:
        raise ValueError(
            f"{weights} is corrupt or not {name} weights ({error}). Fix: rerun `{train_command}`"
        ) from error
    model.config = manifest
    model.eval().to(device or "cpu")
    _loaded[key] = model
    return model


def export(model: FamilyModel, folder: Path, **manifest: object) -> dict:
    """Write `model`'s weights (safetensors, atomically) and a manifest (its size options, parameter count,
    the weights' SHA-256, git commit, hardware, plus `manifest`) into `folder`; returns the manifest."""
    from safetensors.torch import save

    from mnistmem.atomic import write_atomic, write_json
    from mnistmem.devices import hardware_summary
    from mnistmem.integrity import sha256_file
    from mnistmem.provenance import code_commit

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / FILES[0]
    payload = save({k: v.contiguous() for k, v in model.state_dict().items()})
    write_atomic(weights, lambda handle: handle.write(payload))
    record = {
        "model_kwargs": model.model_kwargs,
        **manifest,
        "parameters": sum(p.numel() for p in model.parameters()),
        "code": code_commit(),
        "hardware": hardware_summary("cpu"),
        "weights_sha256": sha256_file(weights),
    }
    write_json(folder / FILES[1], record)
    return record
