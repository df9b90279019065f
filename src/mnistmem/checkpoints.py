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

`state.json` records the SHA-256 of each tensor file (`files`), and every read checks it (`read_tensors`), so
a flipped byte, a truncated or replaced file, or a deleted EMA is refused with one line naming the file rather
than sampled from. A checkpoint written before these hashes existed loads only where a finished stage's
record (`stage.json`, `mnistmem.integrity`) covers it; the trainer records the hashes of its own older
checkpoints when it resumes a run (`record_missing_hashes`).

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

from mnistmem.atomic import write_json
from mnistmem.integrity import sha256_file
from mnistmem.models import FamilyModel, UnknownModelError, model_class

CHECKPOINTS = "checkpoints"
STATE = "state.json"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
OPTIMIZER = "optimizer.safetensors"
FILES = "files"  # the state.json field: {tensor file name: SHA-256}
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
    return write_checkpoint_folder(step_dir(out_dir, step), state, files)


def write_checkpoint_folder(final: Path, state: dict[str, Any], files: dict[str, dict[str, torch.Tensor]]) -> Path:
    """Atomically create (or replace) the checkpoint folder `final`: `state.json`, with the SHA-256 of each
    tensor file under `files`, and one safetensors per `files` entry."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, tensors in files.items():
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / name))
    write_json(tmp / STATE, {**state, FILES: _file_hashes(tmp, files)})
    for file in tmp.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():  # the same step written again (after a resume): move the old one aside first
        remove_checkpoint(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final


def _file_hashes(folder: Path, names) -> dict[str, str]:
    """{name: SHA-256} of the named files in `folder`: what a checkpoint's state.json records."""
    return {name: sha256_file(folder / name) for name in names}


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


#: what every checkpoint's state.json holds
_STATE_FIELDS = ("family", "model_kwargs", "config", "step")


def read_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's state.json, refused (one line naming it) when unreadable or missing a field."""
    try:
        state = json.loads((checkpoint / STATE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{checkpoint / STATE} is unreadable or corrupt ({error})") from error
    missing = [f for f in _STATE_FIELDS if f not in state] if isinstance(state, dict) else list(_STATE_FIELDS)
    if missing:
        raise CheckpointError(
            f"{checkpoint / STATE} is not a checkpoint record (missing {', '.join(missing)}). Fix: use another "
            "checkpoint, or train again"
        )
    return state


def state_digest(checkpoint: Path) -> str:
    """SHA-256 of a checkpoint's state.json: it records the hashes of the tensor files, so this one value pins
    the whole checkpoint (a run continued from it names it by this, not by its path)."""
    if FILES not in read_state(checkpoint):  # a readable checkpoint record, or the one-line error
        raise CheckpointError(
            f"{checkpoint / STATE} records no file hashes (written by an older version). Fix: resume that run "
            "once with `mnistmem train` (it records them), or train again"
        )
    return sha256_file(checkpoint / STATE)


def record_missing_hashes(out_dir: Path) -> list[Path]:
    """Add the `files` hashes to the run's checkpoints written before they were recorded; return those.

    Only the trainer calls this, on its own run folder, at the moment it trusts that folder anyway (to resume
    from it); a checkpoint found elsewhere without hashes is refused by `load_model`."""
    sealed = []
    for _, checkpoint in list_checkpoints(out_dir):
        state = read_state(checkpoint)
        if FILES not in state:
            names = sorted(p.name for p in checkpoint.glob("*.safetensors"))
            write_json(checkpoint / STATE, {**state, FILES: _file_hashes(checkpoint, names)})
            sealed.append(checkpoint)
    return sealed


def read_tensors(file: Path, state: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Load a safetensors file, after checking it against the SHA-256 that `state` (its checkpoint's
    state.json) records; a missing, altered or unrecorded file is a `CheckpointError` naming it.
    `state=None` (a checkpoint already verified by its stage record) skips the hash."""
    if state is not None:
        expected = state.get(FILES, {}).get(file.name)
        if expected is None:
            raise CheckpointError(
                f"{file} is not recorded in {file.parent / STATE} (unverified). Fix: use a checkpoint written by "
                "`mnistmem train`, or train again"
            )
        if not file.is_file():
            raise CheckpointError(f"{file} is missing (recorded with SHA-256 {expected[:16]}…). Fix: train again")
        found = sha256_file(file)
        if found != expected:
            raise CheckpointError(
                f"{file} has SHA-256 {found[:16]}…, its checkpoint recorded {expected[:16]}…: refused. "
                "Fix: restore the file (e.g. from git) or train again"
            )
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
    `.step`; sample it with `mnistmem.sampling.sample(model, ...)`. With `ema=True`
    (default) the EMA weights are used where the run kept them (an exported sampler, `export_sampler`, holds
    only those, in the precision it was stored in, computed in float32). `family` checks the checkpoint is of
    the expected kind.
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
    verify = state if FILES in state else _verified_by_stage_record(checkpoint)
    load_into(model, read_tensors(checkpoint / MODEL, verify), checkpoint / MODEL)
    # an exported sampler holds the EMA weights already (`export_sampler`); loading casts them to float32
    exported = SAMPLER in state
    if ema and not exported and model.ema_module() is not None and state.get("config", {}).get("ema") is not None:
        if not (checkpoint / EMA).exists():
            raise CheckpointError(
                f"{checkpoint / EMA} is missing, though the run kept an EMA of its weights. Fix: restore the file, "
                "or pass --no-ema to sample the training weights"
            )
        load_ema_weights(model.ema_module(), read_tensors(checkpoint / EMA, verify), checkpoint / EMA)
        model.averaged_weights_loaded()
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(
            f"{checkpoint} holds non-finite weights ({bad[0]} …): refused. Fix: use another checkpoint"
        )
    model.config = state["config"]
    model.step = state["step"]
    model.checkpoint = checkpoint
    if device is not None:
        from mnistmem.devices import pick_device

        model.to(pick_device(device))
    return model.eval()


#: state.json field of an exported sampler (`export_sampler`): where its weights came from and how they were stored
SAMPLER = "sampler"
#: dtypes a sampler's parameters may be stored in
SAMPLER_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def export_sampler(checkpoint: str | os.PathLike, target: Path, dtype: str = "float16") -> dict[str, Any]:
    """Write the weights every sample is drawn with into the folder `target` (a checkpoint folder, as `model/`
    of a stage): the EMA weights already in place of the trained ones (and, for the GAN, its batch-norm
    statistics re-estimated for them), parameters in `dtype`, no optimizer state. It loads with `load_model`
    like any checkpoint, and gives the same samples as the training checkpoint up to the rounding of `dtype`.

    Why: the committed data must stay small (the data budget), and a model's training weights, EMA copy and
    optimizer moments are four times what sampling needs. Half precision (11 significant bits) rounds less than
    the bfloat16 (8 bits) the networks computed in during training. Returns the record kept under `sampler` in
    the exported state.json."""
    if dtype not in SAMPLER_DTYPES:
        raise CheckpointError(f"unknown sampler dtype {dtype!r}; choose one of {sorted(SAMPLER_DTYPES)}")
    source = resolve_checkpoint(checkpoint)
    state = read_state(source)
    model = load_model(source)
    parameters = {name for name, _ in model.named_parameters()}
    tensors = {
        name: tensor.to(SAMPLER_DTYPES[dtype]) if name in parameters else tensor
        for name, tensor in model.state_dict().items()
    }
    record = {
        "from_step": state["step"],
        "from_state_sha256": state_digest(source),
        "ema_applied": bool(model.ema_module() is not None and state["config"].get("ema") is not None),
        "parameter_dtype": dtype,
    }
    kept = {k: state[k] for k in ("family", "model_kwargs", "config", "step", "device", "precision") if k in state}
    write_checkpoint_folder(Path(target), {**kept, SAMPLER: record}, {MODEL: tensors})
    return record


def _verified_by_stage_record(checkpoint: Path) -> None:
    """For a checkpoint without its own hashes: verify it against the record of the finished stage whose
    folder holds it (`stage.json`), or refuse it as unverified. Returns None: its files are then checked."""
    from mnistmem import integrity
    from mnistmem.results import STAGE_FILE

    for folder in checkpoint.parents:
        record_file = folder / STAGE_FILE
        if record_file.is_file():
            try:
                record = json.loads(record_file.read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise CheckpointError(f"{record_file} is unreadable ({error}); cannot verify {checkpoint}") from error
            fix = "Fix: restore the stage's files (e.g. from git) or rerun it with `mnistmem reproduce --rerun`"
            try:
                integrity.check_seal(record, str(record_file), fix)
                integrity.verify_files(folder, record["files"], checkpoint, fix)
            except integrity.IntegrityError as error:
                raise CheckpointError(str(error)) from error
            return None
    raise CheckpointError(
        f"{checkpoint} records no content hashes (written by an older mnistmem) and no stage record covers it: "
        "unverified, refused. Fix: resume or rerun its training (`mnistmem train --out RUN`), which records them"
    )


def load_ema_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Copy EMA parameters (keyed by parameter name) into `module`."""
    params = dict(module.named_parameters())
    if set(params) != set(tensors):
        raise CheckpointError(f"{source} does not match this model's parameters")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[name])
