"""Choosing where tensors live: CUDA, then Apple's MPS, then the CPU.

`pick_device()` honours, in order, an explicit argument, the `MNISTMEM_DEVICE` environment variable, and
what is available. It says what it picked (and why) so that a log or a notebook shows which hardware
produced a number. `configure_cpu_threads()` uses every core this process may run on.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator

import torch

ENV_VAR = "MNISTMEM_DEVICE"


class DeviceError(RuntimeError):
    """A device or thread count was requested that this machine cannot provide."""


def available_devices() -> list[str]:
    """Device types usable here, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick_device(requested: str | torch.device | None = None, verbose: bool = False) -> torch.device:
    """The device to use: `requested`, else `$MNISTMEM_DEVICE`, else cuda > mps > cpu.

    A request for a device this machine lacks is an error, not a silent fall back to the CPU.
    """
    source = "argument"
    if requested is None:
        requested, source = os.environ.get(ENV_VAR) or None, f"${ENV_VAR}"
    if requested is None:
        device, source = torch.device(available_devices()[0]), "best available"
    else:
        try:
            device = torch.device(requested)
        except RuntimeError as error:
            raise DeviceError(f"invalid device {requested!r} (from {source}): {error}") from error
        if device.type not in available_devices():
            raise DeviceError(
                f"device {requested!r} (from {source}) is not available here; available: {available_devices()}. "
                f"Fix: pass another device or unset {ENV_VAR}."
            )
    if device.type == "cpu":
        configure_cpu_threads()
    if verbose:
        print(f"mnistmem: using {describe_device(device)} ({source})")
    return device


THREADS_VAR = "MNISTMEM_THREADS"


def available_cores() -> int:
    """The CPU cores this process may run on (2 on the project machines)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_cpu_threads() -> int:
    """Let torch use every core this process may run on; return the count.

    `MNISTMEM_THREADS=n` caps it, for experiments run side by side in separate processes (small convolutions
    use a second thread poorly; `bench/jobs.py` measures the gain).
    """
    cores = available_cores()
    if os.environ.get(THREADS_VAR):
        value = os.environ[THREADS_VAR]
        if not value.isdigit() or int(value) < 1:
            raise DeviceError(f"{THREADS_VAR}={value!r} must be a positive whole number of threads (or unset it)")
        cores = min(cores, int(value))
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return cores


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch threads, then restore the previous count (bit-exact reproduction of a
    floating-point result needs the thread count it was computed with)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def describe_device(device: torch.device | str) -> str:
    """A human-readable name: the GPU's model, or the CPU's architecture and thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    threads = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {threads} thread{'s' if threads != 1 else ''})"


#: CPU flags that decide speed (and, for floating-point kernels, the last bits of results) here
RELEVANT_CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def cpu_summary() -> dict:
    """The CPU's model name, its speed-relevant flags and a short kind, e.g. "intel-xeon-amx".

    Read from /proc/cpuinfo (Linux); elsewhere the model is `platform.processor()` and flags are unknown.
    The kind names the two families seen on the project machines: "...-amx" (AMX and AVX-512 BF16/VNNI:
    bf16 and int8 matrix units), "...-avx512", "...-avx2" (no native bf16 or int8 products).
    """
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())  # the first processor's entry
                if "model name" in fields and "flags" in fields:
                    break
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields["flags"].split()) if "flags" in fields else None
    present = None if flags is None else [flag for flag in RELEVANT_CPU_FLAGS if flag in flags]
    lower = model.lower()
    vendor = "intel" if "intel" in lower else "amd" if "amd" in lower else platform.machine()
    line = "xeon" if "xeon" in lower else "epyc" if "epyc" in lower else "cpu"
    if present is None:
        tier = "unknown"
    elif "amx_int8" in present:
        tier = "amx"
    else:
        tier = "avx512" if "avx512f" in present else "avx2" if "avx2" in present else "basic"
    return {
        "model": model,
        "flags": present,
        "kind": f"{vendor}-{line}-{tier}",
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
    }


def hardware_summary(device: torch.device | str | None = None) -> dict:
    """Facts about the machine for result manifests (the CPU's model, kind and flags always included)."""
    device = torch.device(device) if device is not None else pick_device()
    return {
        "cpu": cpu_summary(),
        "device": describe_device(device),
        "threads": torch.get_num_threads(),
        "device_type": device.type,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
