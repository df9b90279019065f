"""Checkpoints: safetensors weights + JSON, written atomically; loading a trained model back.

Layout of a training run directory (`mnistmem.training.train(config, out_dir)`):

    out_dir/
      config.json                   the run's TrainConfig (written before the first step)
      metrics.jsonl                 one JSON line of mean losses and images/s every `log_every` steps
      checkpoints/
        step_00000500/              one directory per checkpoint, named by its step
          state.json                family, model_kwargs, full config, step, optimizer/EMA structure, timing
          model.safetensors         every weight and buffer of the model (the training weights)
          ema.safetensors           EMA of `model.ema_module()`'s parameters, when the config has `ema`
          optimizer.safetensors     the optimizers' tensors (Adam moments, step counts)

A checkpoint is first written to `checkpoints/.tmp-step_…`, its files flushed to disk, and then the whole
directory is renamed into place (`os.rename` of a directory is atomic), so a process killed at any moment
leaves either the complete checkpoint or none; names starting with "." are ignored and cleaned up.
Nothing is pickled: tensors go to safetensors, everything else to JSON (`flatten_state`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mnistmem.models import FamilyModel, UnknownModelError, model_class

CHECKPOINTS = "checkpoints"
STATE = "state.json"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
OPTIMIZER = "optimizer.safetensors"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(ValueError):
    """A path that is not a usable checkpoint (missing, corrupt, or from another model)."""


# --------------------------------------------------------------------------------------------- state trees
def flatten_state(tree: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tensors, numbers) into JSON and a flat tensor dict.

    Tensors are replaced by {"__tensor__": key}; dicts become {"__dict__": [[key, value], ...]} so integer
    keys (optimizer state is keyed by parameter index) survive JSON.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(node, dict):
            return {"__dict__": [[k, walk(v, f"{path}.{k}")] for k, v in node.items()]}
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} at {path} in a checkpoint")

    return walk(tree, prefix or "root"), tensors


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_state`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        return {k: unflatten_state(v, tensors) for k, v in tree["__dict__"]}
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    return tree


# ------------------------------------------------------------------------------------------- writing
def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to `path` via a temporary file and `os.replace`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_dir(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / CHECKPOINTS / f"step_{step:08d}"


def write_checkpoint(
    out_dir: Path, step: int, state: dict[str, Any], files: dict[str, dict[str, torch.Tensor]]
) -> Path:
    """Atomically create `checkpoints/step_<step>/` holding `state.json` and one safetensors per `files` entry."""
    final = step_dir(out_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, tensors in files.items():
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / name))
    write_json_atomic(tmp / STATE, state)
    for file in tmp.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():  # the same step written again (after a resume): move the old one aside first
        remove_checkpoint(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint directory: rename it to a hidden name first, so it vanishes atomically."""
    trash = path.parent / f".trash-{path.name}-{os.getpid()}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def clean_temporaries(out_dir: Path) -> None:
    """Remove half-written or half-deleted checkpoints left by a killed process."""
    folder = Path(out_dir) / CHECKPOINTS
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(entry, ignore_errors=True)


# ------------------------------------------------------------------------------------------- reading
def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, as (step, path), oldest first."""
    folder = Path(out_dir) / CHECKPOINTS
    found = []
    if folder.is_dir():
        for entry in folder.iterdir():
            match = _STEP_DIR.match(entry.name)
            if match and (entry / STATE).exists():
                found.append((int(match.group(1)), entry))
    return sorted(found)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory from a checkpoint path or a run directory (then its latest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist. Fix: pass a run directory or checkpoints/step_N")
    if path.is_file():
        path = path.parent
    if (path / STATE).exists():
        return path
    found = list_checkpoints(path)
    if not found:
        raise CheckpointError(
            f"{path} is neither a checkpoint (no {STATE}) nor a run directory with checkpoints. "
            "Fix: pass the directory given to `mnistmem train --out`, or one of its checkpoints/step_N"
        )
    return found[-1][1]


def read_state(checkpoint: Path) -> dict[str, Any]:
    try:
        return json.loads((checkpoint / STATE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{checkpoint / STATE} is unreadable or corrupt ({error})") from error


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing or corrupt file is a `CheckpointError` naming it."""
    try:
        return load_file(str(file))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{file} is missing or corrupt ({error}). Fix: use another checkpoint") from error


def load_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """`load_state_dict(strict=True)` with an error that names the file."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{source} does not fit this model: {str(error).splitlines()[0]}") from error


def load_model(
    path: str | os.PathLike,
    device: torch.device | str | None = None,
    ema: bool = True,
    family: str | None = None,
) -> FamilyModel:
    """A trained model in eval mode, from a checkpoint or a run directory (its latest checkpoint).

    The model has `.family`, `.model_kwargs`, `.config` (the training config with its data spec) and
    `.step`; sample it with `mnistmem.sampling.sample(model, ...)` or `model.sample(...)`. With `ema=True`
    (default) the EMA weights are used where the run kept them. `family` checks the checkpoint is of the
    expected kind.
    """
    checkpoint = resolve_checkpoint(path)
    state = read_state(checkpoint)
    found = state.get("family")
    if family is not None and found != family:
        raise CheckpointError(f"{checkpoint} holds a {found!r} model, not a {family!r} model")
    try:
        model = model_class(found)(**state["model_kwargs"])
    except (UnknownModelError, KeyError, TypeError) as error:
        raise CheckpointError(f"{checkpoint / STATE} does not describe a known model ({error})") from error
    load_into(model, read_tensors(checkpoint / MODEL), checkpoint / MODEL)
    if ema and (checkpoint / EMA).exists() and model.ema_module() is not None:
        load_ema_weights(model.ema_module(), read_tensors(checkpoint / EMA), checkpoint / EMA)
    model.config = state["config"]
    model.step = state["step"]
    model.checkpoint = checkpoint
    if device is not None:
        from mnistmem.devices import pick_device

        model.to(pick_device(device))
    return model.eval()


def load_ema_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Copy EMA parameters (keyed by parameter name) into `module`."""
    params = dict(module.named_parameters())
    if set(params) != set(tensors):
        raise CheckpointError(f"{source} does not match this model's parameters")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[name])
