"""Benchmark: is running experiments side by side (`mnistmem reproduce --jobs N`) faster? (not a test)

    PYTHONPATH=src python bench/jobs.py [--steps 20] [--processes 2] [--json out.json]

The work unit is the cpu scale's most common cost: training steps of the diffusion UNet (16, 32, 32) at batch
64 on MNIST digits. Baseline, measured in the same run: one process with all cores does `processes × steps`
steps. Side by side: `processes` processes with cores/processes threads each (what `--jobs` sets through
MNISTMEM_THREADS) do `steps` steps each, at the same time. The ratio printed is baseline wall time / side-by-
side wall time (above 1: `--jobs` pays). Timings on a shared CPU are noisy; rerun on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = """
import sys, time, torch
from mnistmem import data
from mnistmem.devices import configure_cpu_threads
from mnistmem.models.base import to_model_input
from mnistmem.training import TrainConfig, TrainingRun
configure_cpu_threads()
config = TrainConfig(
    model="diffusion", model_kwargs={"channels": [16, 32, 32]}, batch_size=64, precision="fp32", ema=None
)
run = TrainingRun(config, torch.device("cpu"), channels_last=False)
images, labels = data.load_mnist("train")
steps = int(sys.argv[1])
run.step(to_model_input(images[:64]), torch.from_numpy(labels[:64]), "fp32", lambda l: l.backward())
tick = time.perf_counter()
for k in range(steps):
    rows = slice(64 * k, 64 * (k + 1))
    run.step(to_model_input(images[rows]), torch.from_numpy(labels[rows]), "fp32", lambda l: l.backward())
print(time.perf_counter() - tick)
"""


def run_workers(count: int, threads: int, steps: int) -> float:
    """Time until the last of `count` workers, started together, finishes its `steps` steps (start-up excluded)."""
    env = {**os.environ, "MNISTMEM_THREADS": str(threads)}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(steps)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    return max(float(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers)


def main() -> None:
    from mnistmem.devices import available_cores, hardware_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per side-by-side process")
    parser.add_argument("--processes", type=int, default=2, help="processes side by side (as --jobs)")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    cores = available_cores()
    baseline = run_workers(1, cores, args.processes * args.steps)
    side_by_side = run_workers(args.processes, max(1, cores // args.processes), args.steps)
    result = {
        "hardware": hardware_summary(),
        "cores": cores,
        "steps_total": args.processes * args.steps,
        "baseline_one_process_seconds": round(baseline, 2),
        "side_by_side_seconds": round(side_by_side, 2),
        "ratio": round(baseline / side_by_side, 2),
    }
    print(
        f"{result['steps_total']} diffusion steps: one process with {cores} threads {baseline:.1f} s; "
        f"{args.processes} processes side by side {side_by_side:.1f} s -> {result['ratio']:.2f}x"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
