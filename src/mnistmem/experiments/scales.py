"""The sizes of every experiment at each scale, in one place so the trade-offs are visible together.

- smoke: everything in a few minutes on 2 CPU cores. Tiny models trained for a few steps: the numbers
  mean nothing, the pipeline is what is tested (tests and CI's book build use it).
- cpu: the committed scale, about 2 hours of wall clock on 2 CPU cores with `--jobs 3` (the budget is 4).
  Small models, few training steps, 10,000 samples per main model; training-set sizes the CPU can afford.
  Every chapter says when it shows this scale.
- gpu: the paper scale, on a lent GPU in loans of 15 minutes (`mnistmem.trip`): the whole census (1,000,000
  GAN and VAE samples, 100,000 diffusion samples), all training-set sizes, longer GAN and VAE training.
  A trip carries about 12 MiB besides the tracked tree and brings back 64 MiB, so a training cannot pause on one
  loan and continue on the next (its state, float32 weights + EMA + Adam's two moments, is 16 bytes per
  parameter): each must finish within one step of 6 minutes. The diffusion model is therefore the cpu scale's
  recipe (1.07 M parameters, 17 MiB of state; MNIST-FID 10.4 and 90.7% recognised at 20,000 steps, meeting the
  models issue's bars), not the 4.4 M-parameter UNet with attention planned before (68 MiB; 2,520 minutes of
  training on the AVX-512 EPYC against 220 for the cpu recipe). Measured on that CPU by `bench/gpu_plan.py`
  (2 threads, bf16): training the plan's VAE 20 minutes, GAN 107, diffusion 220. The GPU's figures come from the
  same script, which opens every loan; write them here when a loan brings them back.
"""

from __future__ import annotations

from typing import Any

SCALES = ("smoke", "cpu", "gpu")

_DIFFUSION_SMALL = {"channels": [16, 32, 32]}
_DIFFUSION_CPU = {"channels": [32, 64, 64]}
#: The cpu-scale diffusion recipe of the `training` experiment (models issue): a 4× wider UNet than the
#: committed main one, min-SNR-5 weighting, warm-up + cosine learning rate, clipping, EMA with warm-up; ~20
#: epochs per 90-minute sitting would need 380 img/s: measured ~140 img/s at batch 128 under bf16 on the AMX
#: Xeon, so this trains over several sittings (`mnistmem reproduce --scale cpu --only training --minutes 85`).
_DIFFUSION_CPU_RECIPE = {
    "model_kwargs": {**_DIFFUSION_CPU, "snr_gamma": 5.0},
    "steps": 20_000,
    "batch_size": 128,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "warmup_steps": 500,
    "grad_clip": 1.0,
    "ema": 0.9995,
    "ema_warmup": True,
    "keep_every": 2000,
}
#: The cpu-scale VAE recipe: the committed main VAE's size, trained ~43 epochs with warm-up + cosine (a VAE has no
#: adversary and no noise levels to balance: what it lacks at 3,000 steps is training time).
_VAE_CPU_RECIPE = {
    "model_kwargs": {},
    "steps": 20_000,
    "batch_size": 128,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "warmup_steps": 500,
    "keep_every": 2000,
}
#: The cpu-scale GAN recipe: the DCGAN example's optimiser (Adam 2e-4, beta1 0.5, batch 128) with an exponential
#: moving average of the generator's weights (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN
#: training": the average sits near the centre of the orbit the adversarial game makes the weights circle).
_GAN_CPU_RECIPE = {
    "model_kwargs": {"ngf": 64, "ndf": 64},
    "steps": 20_000,
    "batch_size": 128,
    "lr": 2e-4,
    "ema": 0.999,
    "ema_warmup": True,
    "keep_every": 1000,
}
#: The dose experiment's canaries: all 60,000 digits, three stroke canaries at each of seven counts.
_DOSE = {"n": None, "counts": [1, 3, 10, 30, 100, 300, 1000], "per_count": 3, "families": ["diffusion", "gan"]}


def _extraction(
    prompts: int,
    inpaint_steps: int,
    starts: int,
    steps: int,
    blind: int,
    candidates: int,
    labels: dict,
    subsets: tuple[int, ...] = (100,),
) -> dict:
    """The extraction experiment's settings: `prompts` per prompt set and mask, the diffusion models' inpainting
    solver steps, the latent search's `starts` and Adam `steps`, `blind` samples and the `candidates` kept;
    `labels`: the training-set sizes of the class-conditional models (`sizes`) and the samples per label;
    `subsets`: the sizes of the onset grid's kept diffusion models that are attacked too (its `halves`)."""
    return {
        "label_sizes": labels["sizes"],
        "per_label": labels["per_label"],
        "regimes": ["diffusion", "gan", *(f"diffusion_{n}" for n in subsets), "canaries"],
        "prompts": prompts,
        "inpaint_steps": inpaint_steps,
        "inversion": {"starts": starts, "steps": steps},
        "blind_samples": blind,
        "candidates": candidates,
    }


_GAN_SMALL = {"ngf": 16, "ndf": 16}

_CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": {
        "calibration": {"test_digits": 1000, "train_queries": 2000, "cells": 10, "cells_fit": 3000},
        "models": {
            "gan": {"model_kwargs": _GAN_SMALL, "steps": 20, "batch_size": 32},
            "vae": {"model_kwargs": {"latent": 8, "width": 8, "hidden": 32}, "steps": 20, "batch_size": 32},
            "diffusion": {"model_kwargs": _DIFFUSION_SMALL, "steps": 10, "batch_size": 16},
        },
        "training": {
            "diffusion": {"model_kwargs": _DIFFUSION_SMALL, "steps": 10, "batch_size": 16, "keep_every": 5},
            "vae": {
                "model_kwargs": {"latent": 8, "width": 8, "hidden": 32},
                "steps": 10,
                "batch_size": 16,
                "keep_every": 5,
            },
            "gan": {"model_kwargs": _GAN_SMALL, "steps": 10, "batch_size": 16, "ema": 0.9, "keep_every": 5},
        },
        "main": {
            "n_samples": 200,
            "cells": 10,
            "cells_fit": 3000,
            "sampler": {"steps": 4},
            "trained_sampler": {"steps": 6},
        },
        "census": {
            "n": {"gan": 640, "vae": 640, "diffusion": 128},
            "chunk": {"gan": 256, "vae": 256, "diffusion": 128},
        },
        "recall": {"images": 20, "texture_bank": 50},
        "training_curve": {"n_samples": 64},
        "training_solver": {"n_samples": 64, "points": [[10, 4], [10, 6]]},
        "onset": {
            "sizes": {"diffusion": [100, 200], "gan": [100], "vae": [100]},
            "grid": [4, 8],
            "n_samples": 64,
            "halves": [100, 200],
            "same_noise_samples": 32,
        },
        "onset_recipes": {
            "diffusion": {"model_kwargs": {"channels": [8, 16, 16]}, "batch_size": 16},
            "gan": {"model_kwargs": _GAN_SMALL, "batch_size": 16, "ema": 0.9},
            "vae": {"model_kwargs": {"latent": 8, "width": 8, "hidden": 32}, "batch_size": 16},
        },
        "dose": {
            "n": 300,
            "counts": [1, 10, 100],
            "per_count": 2,
            "steps": 16,
            "n_samples": 64,
            "families": ["diffusion", "gan"],
        },
        "extraction": _extraction(6, 4, 2, 10, 128, 10, {"sizes": [100], "per_label": 16}, subsets=(100, 200)),
        "unlearning": {
            "n": 60,
            "canary_count": 20,
            "shards": 2,
            "slices": 2,
            "steps": 8,
            "n_samples": 16,
            "sampler": {"steps": 2},
            "unseen": 20,
            "finetune_steps": 2,
            "relearn_steps": 2,
        },
    },
    "cpu": {
        # Budgeted from speeds measured on the 2-core AMD EPYC (AVX2, fp32) CI machine, one thread per
        # process: DCGAN (ngf=ndf=32) 0.29 s per step of 128, VAE 0.09 s, UNet (16,32,32) 0.6 s per step of
        # 64 for training and ~18 samples/s with 15 DPM-Solver steps. Run as three processes side by side
        # (`mnistmem reproduce --jobs 3`), the whole scale took 1 h 45 min of wall clock (see the manifests).
        "calibration": {"test_digits": 10_000, "train_queries": 60_000, "cells": 50},
        "models": {
            "gan": {"model_kwargs": {"ngf": 32, "ndf": 32}, "steps": 2500, "batch_size": 128},
            "vae": {"model_kwargs": {}, "steps": 3000, "batch_size": 128},
            "diffusion": {"model_kwargs": _DIFFUSION_SMALL, "steps": 3000, "batch_size": 64},
        },
        # Models trained to MNIST quality, with kept checkpoints for the quality curve; `main` moves to them
        # once they are finished.
        "training": {"diffusion": _DIFFUSION_CPU_RECIPE, "vae": _VAE_CPU_RECIPE, "gan": _GAN_CPU_RECIPE},
        # `sampler`: the diffusion models every experiment trains (size, dose, unlearning...) are sampled
        # with 15 DPM-Solver++ steps. `trained_sampler`: the trained diffusion model of `training`, which `main`
        # and the census sample, needs more: measured on its final checkpoint (`training`'s solver_diffusion
        # stage, 2,000 samples) MNIST-FID 36.2 at 15 steps, 12.7 at 40.
        "main": {"n_samples": 10_000, "cells": 50, "sampler": {"steps": 15}, "trained_sampler": {"steps": 40}},
        # A million samples of the GAN and of the VAE, 50,000 of the diffusion model, searched exactly in chunks
        # that resume. Budget, from the main stages on the AMX Xeon (2 threads): drawing and scoring 10,000 GAN
        # or VAE samples takes ~50 s, so a million ~80 min each; the trained diffusion model draws ~6 samples/s
        # at 40 DPM-Solver++ steps, so 50,000 take ~2.3 h, plus ~7 min to score. Run in sittings:
        # `--only census --minutes 85`. A chunk (a multiple of the census's sampling block of 128) is the unit a
        # sitting stops after: ~4 min of GAN or VAE, ~15 min of diffusion samples.
        "census": {
            "n": {"gan": 1_000_000, "vae": 1_000_000, "diffusion": 50_000},
            "chunk": {"gan": 50_048, "vae": 50_048, "diffusion": 5_120},
        },
        "recall": {"images": 1000, "texture_bank": 1000},
        # 2,000 samples per checkpoint; the diffusion model (~19 samples/s) every 4,000 steps of its 20,000
        "training_curve": {"n_samples": 2000, "every": {"diffusion": 4000}},
        # The diffusion model's best checkpoint along the curve (12,000 steps) and its final one at more solver
        # steps than the curve's 15, on the curve's seeds.
        "training_solver": {"n_samples": 2000, "points": [[12_000, 40], [20_000, 25], [20_000, 40]]},
        # The size × training-time grid: each run trains 8,000 steps with checkpoints at the grid's steps, which
        # double as the sizes double, so equal steps (a column) and equal passes (the diagonal: 160 passes at
        # 100 digits after 250 steps ... at 3,200 after 8,000) are both read off it. Budget (AMX Xeon, 2 threads,
        # before measuring): the small UNet ~0.3 s per step of 64, so ~40 min a diffusion run; the GAN and VAE
        # less. Run in sittings: `--only onset --minutes 85`.
        "onset": {
            "sizes": {
                "diffusion": [100, 200, 400, 800, 1600, 3200],
                "gan": [100, 1000, 10_000],
                "vae": [100, 1000, 10_000],
            },
            "grid": [250, 500, 1000, 2000, 4000, 8000],
            "n_samples": 2000,
            # at these sizes a second diffusion run trains on the other half of the same 2n digits, and both
            # final models are sampled from the same noise (Kadkhodaie et al. 2024): ~45 min more each
            "halves": [100, 3200],
            "same_noise_samples": 1000,
        },
        # Recipes of the grid's runs: constant learning rate after a short warm-up, so that a checkpoint halfway is
        # the same training as the end of a run half as long (a cosine schedule would tie each step to the run's
        # length); the small UNet with min-SNR-5 weighting, batch 64.
        "onset_recipes": {
            "diffusion": {
                "model_kwargs": {**_DIFFUSION_SMALL, "snr_gamma": 5.0},
                "batch_size": 64,
                "lr": 1e-3,
                "warmup_steps": 250,
                "grad_clip": 1.0,
                "ema": 0.999,
                "ema_warmup": True,
            },
            "gan": {
                "model_kwargs": {"ngf": 32, "ndf": 32},
                "batch_size": 64,
                "lr": 2e-4,
                "ema": 0.999,
                "ema_warmup": True,
            },
            "vae": {"model_kwargs": {}, "batch_size": 64, "lr": 1e-3, "warmup_steps": 250},
        },
        # 21 stroke canaries among all 60,000 digits, three at each count (4,332 planted rows in all: a canary
        # planted 1,000 times is 1.6% of the 64,332 rows). The grid's recipes (not the `training` experiment's
        # 20,000 steps of a 4× wider UNet, which would take ~9 h a run): 8,000 steps of 64, ~8 passes over the
        # set; ~40 min a diffusion run, three runs.
        "dose": {**_DOSE, "steps": 8000, "n_samples": 10_000},
        # 200 prompts per set and mask; the diffusion models inpaint with 40 solver steps, the GAN searches its
        # latent from 4 starts for 200 Adam steps; 4,000 samples for blind extraction per regime.
        "extraction": _extraction(
            200, 40, 4, 200, 4000, 50, {"sizes": [100, 3200], "per_label": 500}, subsets=(100, 3200)
        ),
        # The onset grid's recipe on 50 digits plus a © planted 5 times (9% of the 55 rows), 1,000 steps of 64:
        # ~1,160 passes over the set, as many as the onset grid's 100 digits got by 2,000 steps, where 57% of
        # samples copied. So the base model reproduces what it is asked to forget (the experiments issue's 5% gate,
        # recorded as `base_share`). Measured on the AMX Xeon: ~130 training images/s (2 threads, the host shared),
        # so ~8 min per full training; the whole experiment ~1 h 30 min in one sitting.
        "unlearning": {
            "n": 50,
            "canary_count": 5,
            "shards": 3,
            "slices": 2,
            "steps": 1000,
            "n_samples": 2000,
            "sampler": {"steps": 10},
            "finetune_steps": 100,
            "relearn_steps": 100,
        },
    },
    "gpu": {
        "calibration": {"test_digits": 10_000, "train_queries": 60_000, "cells": 50},
        "models": {
            "gan": {"model_kwargs": {}, "steps": 20_000, "batch_size": 256},
            "vae": {"model_kwargs": {}, "steps": 20_000, "batch_size": 256},
            "diffusion": {"model_kwargs": {**_DIFFUSION_CPU, "snr_gamma": 5.0}, "steps": 20_000, "batch_size": 128},
        },
        "training": {
            "diffusion": {**_DIFFUSION_CPU_RECIPE, "keep_every": 5000},
            "vae": {**_VAE_CPU_RECIPE, "steps": 40_000, "keep_every": 5000},
            "gan": {**_GAN_CPU_RECIPE, "steps": 40_000, "keep_every": 5000},
        },
        # trained_sampler: the cpu scale's measured choice; measure again on the GPU model (training_solver).
        "main": {"n_samples": 100_000, "cells": 50, "sampler": {}, "trained_sampler": {"steps": 40}},
        "census": {
            "n": {"gan": 1_000_000, "vae": 1_000_000, "diffusion": 100_000},
            "chunk": {"gan": 100_096, "vae": 100_096, "diffusion": 100_096},
        },
        "recall": {"images": 1000, "texture_bank": 1000},
        "training_curve": {"n_samples": 10_000},
        "training_solver": {"n_samples": 10_000, "points": [[20_000, 20], [20_000, 40], [20_000, 60]]},
        "onset": {
            "sizes": {
                "diffusion": [100, 300, 1000, 3000, 10_000],
                "gan": [100, 1000, 10_000],
                "vae": [100, 1000, 10_000],
            },
            "grid": [500, 1000, 2000, 4000, 8000, 16_000, 32_000],
            "n_samples": 10_000,
            "halves": [100, 10_000],
            "same_noise_samples": 10_000,
        },
        "onset_recipes": {
            "diffusion": {
                "model_kwargs": {**_DIFFUSION_CPU, "snr_gamma": 5.0},
                "batch_size": 128,
                "lr": 1e-3,
                "warmup_steps": 500,
                "grad_clip": 1.0,
                "ema": 0.9995,
                "ema_warmup": True,
            },
            "gan": dict(_GAN_CPU_RECIPE),
            "vae": {"model_kwargs": {}, "batch_size": 128, "lr": 1e-3, "warmup_steps": 500},
        },
        "dose": {**_DOSE, "steps": 30_000, "n_samples": 50_000},
        "extraction": _extraction(
            1000, 40, 8, 300, 50_000, 200, {"sizes": [100, 10_000], "per_label": 5000}, subsets=(100, 10_000)
        ),
        "unlearning": {
            "n": 1000,
            "canary_count": 100,
            "shards": 5,
            "slices": 4,
            "steps": 10_000,
            "n_samples": 10_000,
            "finetune_steps": 1000,
            "relearn_steps": 1000,
        },
    },
}


def config(scale: str, section: str) -> dict[str, Any]:
    """The settings of `section` ("models", "main", ...) at `scale`."""
    if scale not in _CONFIGS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {SCALES}")
    return _CONFIGS[scale][section]
