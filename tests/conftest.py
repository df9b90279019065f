"""Shared fixtures: tiny model sizes so every family trains in seconds on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch

#: Small versions of each family (same code paths, a fraction of the compute).
TINY = {
    "gan": {"nz": 16, "ngf": 16, "ndf": 16},
    "vae": {"latent": 8, "width": 8, "hidden": 64},
    "diffusion": {"channels": [16, 32, 32], "norm_num_groups": 8},
    "classifier": {"width": 8, "features": 32},
}


@pytest.fixture(autouse=True)
def _fixed_threads():
    """Tests compare bits; keep the thread count fixed within the test session."""
    torch.set_num_threads(2)
    yield
