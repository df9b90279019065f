"""Exported samplers (`checkpoints.export_sampler`): the EMA weights in half precision give the samples of the
full-precision checkpoint up to rounding, are small, deterministic and verified; an averaged GAN generator gets
batch-norm statistics of its own activations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnistmem import checkpoints as ckpt
from mnistmem.sampling import compare_regenerated, sample
from mnistmem.training import train

from .test_trainer import tiny_config


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "run"
    train(tiny_config("gan", steps=24, ema=0.9), out, progress=False)
    return out


def test_an_exported_sampler_draws_the_checkpoints_samples_up_to_rounding(gan_run, tmp_path):
    record = ckpt.export_sampler(gan_run, tmp_path / "model")
    assert record["ema_applied"] and record["parameter_dtype"] == "float16" and record["from_step"] == 24
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [ckpt.MODEL, ckpt.STATE]
    state = json.loads((tmp_path / "model" / ckpt.STATE).read_text())
    assert state[ckpt.SAMPLER]["from_state_sha256"] == ckpt.state_digest(ckpt.resolve_checkpoint(gan_run))
    tensors = ckpt.read_tensors(tmp_path / "model" / ckpt.MODEL, state)
    assert tensors["generator.0.weight"].dtype == torch.float16
    assert tensors["generator.1.running_var"].dtype == torch.float32  # statistics keep full precision

    full = ckpt.load_model(gan_run)
    images, seeds = sample(full, 64, seed=5)
    stored = ckpt.load_model(tmp_path / "model")
    assert all(p.dtype == torch.float32 for p in stored.parameters())
    compared = compare_regenerated(stored, images, seeds)
    # rounding to 11 significant bits moves a pixel by a grey level or two at most
    assert compared["max_grey_levels"] <= 2
    again, _ = sample(ckpt.load_model(tmp_path / "model"), 64, seed=5)
    assert np.array_equal(again, sample(stored, 64, seed=5)[0])  # the stored sampler is deterministic


def test_a_tampered_sampler_is_refused(gan_run, tmp_path):
    ckpt.export_sampler(gan_run, tmp_path / "model")
    weights = tmp_path / "model" / ckpt.MODEL
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="SHA-256"):
        ckpt.load_model(tmp_path / "model")
    with pytest.raises(ckpt.CheckpointError, match="unknown sampler dtype"):
        ckpt.export_sampler(gan_run, tmp_path / "other", dtype="int4")


def test_the_averaged_generator_gets_the_statistics_of_its_own_activations(gan_run):
    model = ckpt.load_model(gan_run)  # EMA weights, standing statistics
    first_norm = model.generator[1]
    trained = ckpt.load_model(gan_run, ema=False).generator[1]
    assert not torch.allclose(first_norm.running_mean, trained.running_mean)
    with torch.no_grad():
        z = torch.randn(4000, model.nz, 1, 1, generator=torch.Generator().manual_seed(0))
        activations = model.generator[0](z)
    mean = activations.mean(dim=(0, 2, 3))
    scale = activations.std(dim=(0, 2, 3)).mean()
    assert torch.allclose(first_norm.running_mean, mean, atol=0.05 * float(scale))
    # the same checkpoint loads to the same statistics every time
    assert torch.equal(ckpt.load_model(gan_run).generator[1].running_var, first_norm.running_var)
