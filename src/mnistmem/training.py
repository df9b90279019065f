"""One trainer for every family: config in, checkpoints out, resumable after `kill -9`.

    config = TrainConfig(model="diffusion", data=DataSpec(n=1000), steps=3000)
    final_checkpoint = train(config, "runs/diffusion-1k")

The same loop continues a trained model (nanoGPT's `init_from`): `init_from` names a checkpoint whose
weights, optimizer moments and EMA the run starts from, on the data of its own config, so fine-tuning,
relearning and SISA's slice-by-slice training are configurations, not other trainers. `forget` adds a
gradient-*ascent* term on a second data spec to each step (NegGrad+, Kurmanji et al. 2023, arXiv
2302.09880): the unlearning methods of `mnistmem.unlearn` are all runs of this trainer.

The device comes from `mnistmem.devices.pick_device`; mixed precision is a `torch.autocast` context
around each step, so a run leaves no global state behind and runs of different precisions can follow one
another in one process (a test, a notebook, a widget that retrains). Several processes under `accelerate
launch` or `torchrun` each take their share of every batch and average gradients. The CPU choices
(`precision="auto"`, `channels_last="auto"`) follow measurements on each CPU kind: see `resolve_precision`.

Reproducibility: the batch at step k and every random draw in step k are functions of (seed, k) — the
data order is a per-epoch permutation seeded by (seed, epoch) and the global torch RNG is reseeded from
(seed, k) before each step — so no RNG state has to be carried over. A checkpoint holds the weights,
optimizer state and EMA weights; resuming from it replays exactly the steps an uninterrupted run would
take, so on the same machine (CPU, fixed thread count) a killed-and-resumed run ends bit-identical.
Checkpoints are written every `checkpoint_every` steps or `checkpoint_minutes` minutes, whichever comes
first; older ones are deleted unless their step is a multiple of `keep_every`. Layout: `mnistmem.checkpoints`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mnistmem import atomic
from mnistmem import checkpoints as ckpt
from mnistmem.dataspec import DataSpec
from mnistmem.models import FAMILIES, FamilyModel, UnknownModelError, build_model, model_class
from mnistmem.models.base import to_model_input

PRECISIONS = ("auto", "fp32", "bf16")
#: Fields that define what is trained; a resume must agree on them (steps and intervals may change).
IDENTITY_FIELDS = (
    "model",
    "model_kwargs",
    "data",
    "batch_size",
    "lr",
    "precision",
    "seed",
    "ema",
    "ema_warmup",
    "lr_schedule",
    "warmup_steps",
    "schedule_steps",
    "grad_clip",
    "neighbour_pairs",
    "init_digest",
    "forget",
    "forget_weight",
)
LR_SCHEDULES = ("constant", "cosine")


class ConfigError(ValueError):
    """A training config that cannot be used; the message names the field and the fix."""


class TrainingPaused(RuntimeError):  # noqa: N818 (not an error: an expected stop)
    """A run stopped at its wall-clock deadline after writing a checkpoint; rerunning it continues there."""

    def __init__(self, out_dir: Path, step: int, steps: int) -> None:
        super().__init__(f"training in {out_dir} paused at step {step:,} of {steps:,} (time budget reached)")
        self.out_dir, self.step, self.steps = out_dir, step, steps


@dataclass
class TrainConfig:
    """Everything that defines a training run. `lr=None` and `ema="auto"` take the family's defaults.

    `precision="auto"` means bf16 autocast where the hardware runs bf16 fast (CUDA with bf16, or a CPU with
    AVX-512-BF16/AMX) and fp32 elsewhere: on a CPU without native bf16 (e.g. AVX2-only), bf16 autocast is
    10-40× *slower*. `channels_last="auto"` uses the family's measured preference on CPU.

    The optimisation recipe (nanoGPT-style: one loop, everything else configuration): the learning rate
    rises linearly over `warmup_steps`, then stays (`lr_schedule="constant"`) or follows a half cosine to
    zero at `schedule_steps` (`"cosine"`; None = `steps`, fixed when the config is made, so a run resumed
    with more steps keeps its schedule); `grad_clip` caps the gradient norm per optimizer (None = off);
    `ema_warmup` lets the EMA decay grow as 1 - (1 + step)^-3/4 up to `ema` (diffusers' EMAModel warm-up,
    the unconditional training example's default), so early averages are not dominated by the random start.
    `neighbour_pairs`: half of each batch follows the data order and the other half is each of those images'
    nearest other training image by pixels (`nearest_other_images`): hard negatives for contrastive training
    (the copy descriptor), so that it learns to tell an image's copies from similar handwriting.

    Continuing a model: `init_from` is a checkpoint (a run folder is resolved to its latest) of the same family
    and size; the run starts from its weights, optimizer moments and EMA and takes `steps` steps of its own
    (its batches and random draws are those of its own `seed`, counted from 0; the learning rate is this
    config's). `init_digest`, the SHA-256 of that checkpoint's state.json (which holds the hashes of its
    tensor files), is filled in when the config is made: it, not the path, is part of the run's identity, and
    a starting checkpoint that has changed since is refused. `forget` (a `DataSpec`) makes every step
    NegGrad+: the loss on a batch of `forget` rows, times `forget_weight`, is *ascended* in the same update
    that descends the loss on a batch of `data` (families with one optimizer only).
    """

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: DataSpec = field(default_factory=DataSpec)
    steps: int = 1000
    batch_size: int = 64
    lr: float | None = None
    precision: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0
    keep_every: int | None = None
    ema: float | str | None = "auto"
    channels_last: bool | str = "auto"
    log_every: int = 50
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    schedule_steps: int | None = None
    grad_clip: float | None = None
    ema_warmup: bool = False
    neighbour_pairs: bool = False
    init_from: str | None = None
    init_digest: str | None = None
    forget: DataSpec | None = None
    forget_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.model not in FAMILIES:
            raise UnknownModelError(f"unknown model {self.model!r}; choose one of {sorted(FAMILIES)}")
        if isinstance(self.data, dict):
            self.data = DataSpec.from_dict(self.data)
        if isinstance(self.forget, dict):
            self.forget = DataSpec.from_dict(self.forget)
        if self.forget is not None and not float(self.forget_weight) > 0:
            raise ConfigError(f"forget_weight must be positive (the ascent's weight), got {self.forget_weight!r}")
        if self.init_from is not None:
            if self.init_digest is None:  # a new config: name the very checkpoint (a run folder's latest) and pin it
                start = ckpt.resolve_checkpoint(self.init_from)
                self.init_from, self.init_digest = str(start), ckpt.state_digest(start)
            self.init_from = str(self.init_from)
        elif self.init_digest is not None:
            raise ConfigError("init_digest is set without init_from; name the checkpoint to start from")
        family = model_class(self.model)
        if self.lr is None:
            self.lr = family.default_lr
        if self.ema == "auto":
            self.ema = family.default_ema
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.keep_every is not None and (not isinstance(self.keep_every, int) or self.keep_every < 1):
            raise ConfigError(f"keep_every must be None or a positive integer, got {self.keep_every!r}")
        if self.ema is not None and not 0.0 < float(self.ema) < 1.0:
            raise ConfigError(f"ema must be None or a decay in (0, 1), got {self.ema!r}")
        if not self.lr > 0 or not self.checkpoint_minutes > 0:
            raise ConfigError("lr and checkpoint_minutes must be positive")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be a whole number >= 0, got {self.warmup_steps!r}")
        if self.lr_schedule == "cosine" and self.schedule_steps is None:
            self.schedule_steps = self.steps
        if self.schedule_steps is not None and (
            not isinstance(self.schedule_steps, int) or self.schedule_steps <= self.warmup_steps
        ):
            raise ConfigError(
                f"schedule_steps must be a whole number above warmup_steps ({self.warmup_steps}), "
                f"got {self.schedule_steps!r}"
            )
        if self.grad_clip is not None and not float(self.grad_clip) > 0:
            raise ConfigError(f"grad_clip must be None or positive, got {self.grad_clip!r}")
        if self.ema_warmup and self.ema is None:
            raise ConfigError("ema_warmup needs an EMA decay (ema); set ema or drop ema_warmup")
        if self.neighbour_pairs and self.batch_size % 2:
            raise ConfigError(f"neighbour_pairs needs an even batch_size, got {self.batch_size}")

    def lr_factor(self, step: int) -> float:
        """The learning rate of step `step` (0-based) as a multiple of `lr` (warm-up, then the schedule)."""
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / (self.schedule_steps - self.warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["data"] = self.data.to_dict()
        values["forget"] = None if self.forget is None else self.forget.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields {sorted(unknown)}; known: {sorted(known)}")
        values = dict(values)
        spec = values.get("data", {})
        values["data"] = spec if isinstance(spec, DataSpec) else DataSpec.from_dict(spec)
        forget = values.get("forget")
        values["forget"] = forget if forget is None or isinstance(forget, DataSpec) else DataSpec.from_dict(forget)
        return cls(**values)

    def identity(self) -> dict[str, Any]:
        values = self.to_dict()
        return {name: values[name] for name in IDENTITY_FIELDS}


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "fp32" or "bf16" for `device`; "auto" picks bf16 only where the hardware makes it fast.

    Measured with `bench/train.py --precision` (the project trainer, cpu-scale sizes, 300 steps, 2 threads):
    * Intel Xeon with AVX-512 BF16 and AMX (2026-12-01, machine shared with other work, so ±10-20%): bf16
      trained the GAN 1.6×, the VAE 1.2× and the diffusion UNet 3.6× faster than fp32, with the same MNIST-FID
      and recognised share at equal steps (bench/results/train-precision-intel-xeon-amx-contended.json);
    * AMD EPYC with AVX2 only (no native bf16): bf16 autocast 10-40× slower than fp32, hence fp32 there;
    * AMD EPYC with AVX-512 BF16 and VNNI but no AMX (2026-12-06, idle, 2 threads): bf16 trained the diffusion
      UNet 1.29× faster than fp32 (448 vs 348 images/s), same FID and recognised share at equal steps
      (bench/results/train-precision-amd-epyc-avx512.json), so "auto" picks bf16 there too.
    channels_last (the families' `channels_last_cpu`): a few per cent faster for the GAN in both precisions,
    within the noise for the VAE, 1.5-3× slower for the diffusion UNet on the Xeon; unchanged from the AVX2
    measurements, so one preference per family serves both CPUs.
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        try:
            fast = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        except AttributeError:  # older torch
            fast = False
        return "bf16" if fast else "fp32"
    return "fp32"


def resolve_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """Whether to train in channels_last memory format (CPU only; "auto" = the family's preference)."""
    if device.type != "cpu":
        return False
    if config.channels_last == "auto":
        return model_class(config.model).channels_last_cpu
    return bool(config.channels_last)


# ------------------------------------------------------------------------------------------ determinism
def step_seed(seed: int, step: int) -> int:
    """The torch seed of training step `step` (0-based) of a run with `seed`."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1, np.uint64)[0] % (2**63))


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0xDA7A]).permutation(n)


def nearest_other_images(images: np.ndarray) -> np.ndarray:
    """For each image, the row of its nearest *different* image (exact pixel search; identical copies are
    skipped), cached on disk under `<data dir>/cache/` by the images' hash (`mnistmem.diskcache`)."""
    from mnistmem import diskcache
    from mnistmem.data import content_digest
    from mnistmem.neighbors import knn

    def compute() -> np.ndarray:
        distance, index = knn(images, images, k=min(8, len(images)), progress=False)
        nearest = np.empty(len(images), np.int64)
        for row in range(len(images)):
            others = index[row][(distance[row] > 0) & (index[row] != row)]
            nearest[row] = others[0] if len(others) else index[row][index[row] != row][0]
        return nearest

    return diskcache.cached_array(diskcache.cache_file(f"nearest-other-{content_digest(images)[:16]}"), compute)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> np.ndarray:
    """Rows of the training set in the batch of step `step`: consecutive slices of per-epoch permutations."""
    out, position = [], step * batch_size
    while sum(len(part) for part in out) < batch_size:
        epoch, offset = divmod(position, n)
        take = min(batch_size - sum(len(part) for part in out), n - offset)
        out.append(_epoch_permutation(n, seed, epoch)[offset : offset + take])
        position += take
    return np.concatenate(out)


# -------------------------------------------------------------------------------------------------- cost
@dataclass
class Cost:
    """Compute a run spent: optimizer steps, training images processed (the forget batch's included) and wall
    seconds of its training loop (checkpoint writes included), summed over every sitting of a resumed run.
    `from_step`: the step from which seconds were counted (0, except for runs begun before costs were kept)."""

    steps: int = 0
    images: int = 0
    seconds: float = 0.0
    from_step: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.steps + other.steps,
            self.images + other.images,
            self.seconds + other.seconds,
            max(self.from_step, other.from_step),
        )

    def to_dict(self) -> dict[str, float]:
        out = {"steps": self.steps, "images": self.images, "seconds": round(self.seconds, 3)}
        return {**out, "from_step": self.from_step} if self.from_step else out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Cost:
        return cls(
            int(values["steps"]), int(values["images"]), float(values["seconds"]), int(values.get("from_step", 0))
        )


def run_cost(checkpoint: str | os.PathLike) -> Cost:
    """The compute a run had spent when it wrote `checkpoint` (a checkpoint or a run folder: its latest)."""
    path = ckpt.resolve_checkpoint(checkpoint)
    state = ckpt.read_state(path)
    if "cost" not in state:
        raise ckpt.CheckpointError(
            f"{path / ckpt.STATE} records no cost (written before costs were kept). Fix: train that run again"
        )
    return Cost.from_dict(state["cost"])


# ---------------------------------------------------------------------------------------------- training
class TrainingRun:
    """The mutable pieces of a run: model, optimizers, EMA; saved to and restored from checkpoints. Its
    `step` is the trainer's one update (benchmarks time exactly this)."""

    def __init__(self, config: TrainConfig, device: torch.device, channels_last: bool) -> None:
        self.config = config
        torch.manual_seed(config.seed)  # initial weights depend on the seed only
        self.model: FamilyModel = build_model(config.model, **config.model_kwargs).to(device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizers = self.model.optimizers(config.lr)
        #: each optimizer's parameter groups' own learning rates, which the schedule multiplies
        self.base_lrs = {name: [g["lr"] for g in opt.param_groups] for name, opt in self.optimizers.items()}
        target = self.model.ema_module()
        self.ema = None
        if config.ema is not None and target is not None:
            from diffusers.training_utils import EMAModel

            warmup = {"use_ema_warmup": True, "inv_gamma": 1.0, "power": 0.75} if config.ema_warmup else {}
            self.ema = EMAModel(target.parameters(), decay=float(config.ema), foreach=False, **warmup)

    def start_from(self, path: str, digest: str | None) -> None:
        """Take the weights, optimizer moments and EMA of the checkpoint `init_from` names (see `TrainConfig`)."""
        checkpoint = ckpt.resolve_checkpoint(path)
        found = ckpt.state_digest(checkpoint)
        if found != digest:
            raise ConfigError(
                f"init_from {checkpoint} has changed since this run was configured (its state.json has SHA-256 "
                f"{found[:16]}…, the config names {str(digest)[:16]}…). Fix: restore that checkpoint, or start a "
                "new run (another --out) from the checkpoint as it is now"
            )
        state = ckpt.read_state(checkpoint)
        mine = json.dumps(self.model.model_kwargs, sort_keys=True)
        theirs = json.dumps(state["model_kwargs"], sort_keys=True)
        if state["family"] != self.config.model or mine != theirs:
            raise ConfigError(
                f"init_from {checkpoint} is a {state['family']} model with {theirs}, the config asks for a "
                f"{self.config.model} model with {mine}. Fix: give the config the checkpoint's model and model_kwargs"
            )
        for name, what in ((ckpt.OPTIMIZER, "optimizer moments"), (ckpt.EMA, "EMA weights")):
            needed = name == ckpt.OPTIMIZER or self.ema is not None
            if needed and name not in state.get(ckpt.FILES, {}):
                raise ConfigError(
                    f"init_from {checkpoint} holds no {what} ({name}); a committed model/ folder keeps weights only. "
                    "Fix: start from the run's own checkpoint (scratch/run), or set ema=None for a model without EMA"
                )
        self.restore(checkpoint)

    def set_learning_rates(self, step: int) -> None:
        factor = self.config.lr_factor(step)
        for name, optimizer in self.optimizers.items():
            for group, base in zip(optimizer.param_groups, self.base_lrs[name], strict=True):
                group["lr"] = base * factor

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        precision: str,
        backward,
        forget: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> dict[str, float]:
        """One training step: each loss the family yields (computed under autocast), then zero_grad,
        backward, gradient clipping and the optimizer step in full precision, then the EMA.

        With a `forget` batch (NegGrad+), the gradient of `-forget_weight ×` its loss is taken first and the
        retained batch's gradient added to it, so one clipped update descends one and ascends the other."""
        log: dict[str, float] = {}
        autocast = dict(device_type=x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        accumulated = False
        if forget is not None:
            self.optimizers["main"].zero_grad(set_to_none=True)
            ascent_log: dict[str, float] = {}
            with torch.autocast(**autocast):
                _, ascent = next(self.model.losses(*forget, ascent_log))
            backward(-float(self.config.forget_weight) * ascent)
            log["forget_loss"] = ascent_log.get("loss", float(ascent.detach()))
            accumulated = True
        losses = self.model.losses(x, y, log)
        while True:
            with torch.autocast(**autocast):
                pair = next(losses, None)
            if pair is None:
                break
            name, loss = pair
            optimizer = self.optimizers[name]
            if not accumulated:
                optimizer.zero_grad(set_to_none=True)
            accumulated = False
            backward(loss)
            if self.config.grad_clip is not None:
                params = [p for group in optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, float(self.config.grad_clip))
            optimizer.step()
        if self.ema is not None:
            self.ema.step(self.model.ema_module().parameters())
        return log

    def save(self, out_dir: Path, step: int, extra: dict[str, Any]) -> Path:
        optim_tree, optim_tensors = flatten_optimizers(self.optimizers)
        files = {ckpt.MODEL: dict(self.model.state_dict()), ckpt.OPTIMIZER: optim_tensors}
        state: dict[str, Any] = {
            "family": self.config.model,
            "model_kwargs": self.model.model_kwargs,
            "config": self.config.to_dict(),
            "step": step,
            "optimizers": optim_tree,
            **extra,
        }
        if self.ema is not None:
            names = [name for name, _ in self.model.ema_module().named_parameters()]
            files[ckpt.EMA] = dict(zip(names, self.ema.shadow_params, strict=True))
            state["ema_optimization_step"] = self.ema.optimization_step
        return ckpt.write_checkpoint(out_dir, step, state, files)

    def restore(self, checkpoint: Path) -> dict[str, Any]:
        state = ckpt.read_state(checkpoint)
        ckpt.load_into(self.model, ckpt.read_tensors(checkpoint / ckpt.MODEL, state), checkpoint / ckpt.MODEL)
        optim_tensors = ckpt.read_tensors(checkpoint / ckpt.OPTIMIZER, state)
        restored = ckpt.unflatten_state(state["optimizers"], optim_tensors)
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(restored[name])
        if self.ema is not None:
            tensors = ckpt.read_tensors(checkpoint / ckpt.EMA, state)
            names = [name for name, _ in self.model.ema_module().named_parameters()]
            device = next(self.model.parameters()).device
            self.ema.shadow_params = [tensors[name].to(device) for name in names]
            self.ema.optimization_step = state["ema_optimization_step"]
        return state


def flatten_optimizers(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[Any, dict[str, torch.Tensor]]:
    return ckpt.flatten_state({name: opt.state_dict() for name, opt in optimizers.items()}, "optim")


@dataclass(frozen=True)
class _Processes:
    """Where this training process runs: its rank among `world` processes and its device.

    A single process (the normal case) needs nothing global: the device comes from `pick_device`. Under
    `accelerate launch` / `torchrun` (WORLD_SIZE > 1) accelerate's `PartialState` sets up the process group
    once per process; it holds no mixed-precision setting, so runs of different precisions can follow each
    other in one process (an `Accelerator` cannot: its process-wide state refuses a second precision).
    """

    rank: int
    world: int
    device: torch.device

    def wait(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if self.world > 1:
            for p in params:
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.world


def _processes() -> _Processes:
    from mnistmem.devices import pick_device

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        state = PartialState()
        return _Processes(state.process_index, state.num_processes, state.device)
    return _Processes(0, 1, pick_device())


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    resume: bool = True,
    progress: bool = True,
    deadline: float | None = None,
) -> Path:
    """Train per `config` into `out_dir`; return the final checkpoint directory.

    `deadline` (a `time.monotonic()` value): when a step ends past it, write a checkpoint and raise
    `TrainingPaused`; the same call later continues from there, and ends bit-identical to an uninterrupted
    run (long trainings run in stages of a bounded wall time this way).

    Resumes from the latest checkpoint in `out_dir` (`resume=True`); returns at once when the run has
    already finished. `resume=False` refuses to touch a directory that already holds checkpoints.
    """
    out_dir = Path(out_dir)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # one run in several processes: they share the folder
        return _train(config, out_dir, resume, progress, deadline)

    def busy() -> ConfigError:
        return ConfigError(
            f"{out_dir} is being trained by another process; wait for it to finish, or use another --out"
        )

    with atomic.exclusive(out_dir, busy):
        return _train(config, out_dir, resume, progress, deadline)


def _train(config: TrainConfig, out_dir: Path, resume: bool, progress: bool, deadline: float | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_existing_run(config, out_dir, resume)
    ckpt.clean_temporaries(out_dir)
    for checkpoint in ckpt.record_missing_hashes(out_dir):
        print(f"mnistmem train: recorded the content hashes of {checkpoint} (written by an older version)")
    done = ckpt.step_dir(out_dir, config.steps)
    if (done / ckpt.STATE).exists():
        return done

    processes = _processes()
    device = processes.device
    precision = resolve_precision(config.precision, device)
    channels_last = resolve_channels_last(config, device)
    run = TrainingRun(config, device, channels_last)
    if config.forget is not None and set(run.optimizers) != {"main"}:
        raise ConfigError(
            f"forget (NegGrad) needs a model with one optimizer; a {config.model} model has {sorted(run.optimizers)}"
        )
    start, pending_log, spent = 0, [], Cost()
    found = ckpt.list_checkpoints(out_dir)
    found = [(step, path) for step, path in found if step <= config.steps]
    if found:
        restored = run.restore(found[-1][1])
        # the losses of the steps since the last logged line, so the next line averages the same steps as an
        # uninterrupted run's would (not only those since the checkpoint)
        start, pending_log = restored["step"], restored.get("log_window", [])
        kept = restored.get("cost")
        spent = Cost.from_dict(kept) if kept else Cost(start, start * config.batch_size, 0.0, from_step=start)
    elif config.init_from is not None:
        run.start_from(config.init_from, config.init_digest)
    main_process = processes.rank == 0
    if main_process:
        atomic.write_json(out_dir / "config.json", config.to_dict())
        _truncate_metrics(out_dir / "metrics.jsonl", start)

    dataset = config.data.build()
    images = torch.from_numpy(dataset.images)
    labels = torch.from_numpy(dataset.labels)
    forget = None if config.forget is None else config.forget.build()
    neighbours = nearest_other_images(dataset.images) if config.neighbour_pairs else None
    rank, world = processes.rank, processes.world
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    params = [p for p in run.model.parameters() if p.requires_grad]

    def backward(loss: torch.Tensor) -> None:
        loss.backward()  # bf16 autocast needs no loss scaling
        processes.average_gradients(params)  # the model is not DDP-wrapped; see the module doc

    bar = tqdm(
        total=config.steps,
        initial=start,
        disable=not progress or not main_process,
        unit="step",
    )
    run.model.train()
    last_save_time, window, window_start = time.monotonic(), list(pending_log), time.monotonic()
    timed_steps = 0  # steps run in this process since window_start (the restored ones were timed before)
    sitting_start = time.monotonic()
    for step in range(start, config.steps):
        data_seed = config.data.seed * 1_000_003 + config.seed
        ascent = None
        if forget is not None:  # every process ascends the same forget batch (it may be a single image)
            forget_rows = batch_indices(step, min(config.batch_size, len(forget)), len(forget), data_seed + 1)
            ascent = (
                to_model_input(forget.images[forget_rows], device).contiguous(memory_format=memory_format),
                torch.from_numpy(forget.labels[forget_rows]).to(device),
            )
            spent.images += len(forget_rows)
        if config.neighbour_pairs:
            anchors = batch_indices(step, config.batch_size // 2, len(dataset), data_seed)
            rows = np.concatenate([anchors, neighbours[anchors]])
        else:
            rows = batch_indices(step, config.batch_size, len(dataset), data_seed)
        rows = rows[rank::world]
        x = to_model_input(images[rows], device).contiguous(memory_format=memory_format)
        y = labels[rows].to(device)
        torch.manual_seed(step_seed(config.seed, step))
        run.set_learning_rates(step)
        window.append(run.step(x, y, precision, backward, ascent))
        timed_steps += 1
        done_steps = step + 1
        spent.steps, spent.images = done_steps, spent.images + config.batch_size
        if done_steps % config.log_every == 0 or done_steps == config.steps:
            elapsed = time.monotonic() - window_start
            record = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            record.update(
                lr=config.lr * config.lr_factor(step),
                step=done_steps,
                images_per_s=timed_steps * config.batch_size / max(elapsed, 1e-9),
            )
            if main_process:
                with open(out_dir / "metrics.jsonl", "a") as handle:
                    handle.write(json.dumps(record) + "\n")
            window, window_start, timed_steps = [], time.monotonic(), 0
            bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_s']:.0f}")
        bar.update(1)
        minutes = (time.monotonic() - last_save_time) / 60
        out_of_time = deadline is not None and time.monotonic() >= deadline and done_steps < config.steps
        if (
            done_steps % config.checkpoint_every == 0
            or minutes >= config.checkpoint_minutes
            or done_steps == config.steps
            or out_of_time
        ):
            if main_process:
                extra = {
                    "precision": precision,
                    "channels_last": channels_last,
                    "device": str(device),
                    "log_window": window,
                    "cost": replace(spent, seconds=spent.seconds + time.monotonic() - sitting_start).to_dict(),
                }
                run.save(out_dir, done_steps, extra)
                _prune(out_dir, config, keep_step=done_steps)
            processes.wait()
            last_save_time = time.monotonic()
        if out_of_time:
            bar.close()
            raise TrainingPaused(out_dir, done_steps, config.steps)
    bar.close()
    return done


def _check_existing_run(config: TrainConfig, out_dir: Path, resume: bool) -> None:
    config_file = out_dir / "config.json"
    existing = ckpt.list_checkpoints(out_dir)
    if existing and not resume:
        raise ConfigError(f"{out_dir} already holds checkpoints; pass resume=True (--resume) or use a new directory")
    if config_file.exists():
        try:
            previous = TrainConfig.from_dict(json.loads(config_file.read_text()))
        except (ValueError, json.JSONDecodeError) as error:
            raise ConfigError(f"{config_file} is corrupt ({error}); delete {out_dir} or use a new directory") from error
        if previous.identity() != config.identity():
            diff = {k: (previous.identity()[k], v) for k, v in config.identity().items() if previous.identity()[k] != v}
            raise ConfigError(
                f"{out_dir} holds a different run (field: (existing, requested)) {diff}; use a new output directory"
            )


def _prune(out_dir: Path, config: TrainConfig, keep_step: int) -> None:
    """Delete checkpoints older than `keep_step` except the final one and multiples of `keep_every`."""
    for step, path in ckpt.list_checkpoints(out_dir):
        kept = step == config.steps or (config.keep_every is not None and step % config.keep_every == 0)
        if step < keep_step and not kept:
            ckpt.remove_checkpoint(path)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines after `step` (written by a killed run after its last checkpoint)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    keep = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError):
            continue
    text = "".join(line + "\n" for line in keep)
    atomic.write_atomic(path, lambda handle: handle.write(text.encode()))


def read_metrics(out_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The logged loss curve of a run."""
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def logged_seconds(metrics: list[dict[str, float]], batch_size: int) -> dict[int, float]:
    """{logged step: training seconds up to it}, from the throughput each metrics line records for the steps
    since the line before. A run resumed from a checkpoint logs some steps again; the later line counts (the
    steps were redone). Sittings' start-up and checkpoint writing are not included: this is the time spent in
    training steps, on whatever else the machine was doing at the time."""
    latest = {int(m["step"]): float(m["images_per_s"]) for m in metrics if m.get("images_per_s")}
    total, previous, out = 0.0, 0, {}
    for step in sorted(latest):
        total += (step - previous) * batch_size / latest[step]
        out[step], previous = total, step
    return out
