"""The "diff" between two models: subtract their weights, see how large the difference is and where, and add it
to another model.

One side of the public debate holds that the difference between a model trained with and one trained
without an item "can be computed or approximated": subtract it and the item is gone. Here the difference is
computed exactly — the model retrained without the item (same initial weights, same batches apart from the
item, same steps) minus the original — and then:

* its size per layer is compared with the difference between two models trained on the *same* data with
  different seeds (what training noise alone does) and with what fine-tuning changes;
* it is added (scaled) to *another* model — one trained with a different seed, or a fine-tuned one — to see
  whether it carries the item's removal with it, or is specific to the pair it came from.

All differences are taken on the sampling (EMA) weights, which are the weights that generate images.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
import torch

from mnistmem.models.base import FamilyModel


def weights(model: FamilyModel) -> dict[str, torch.Tensor]:
    """The model's floating-point parameters and buffers, by name (float64 copies)."""
    return {k: v.detach().double().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def difference(without: FamilyModel, with_item: FamilyModel) -> dict[str, torch.Tensor]:
    """`without − with_item`, tensor by tensor (the models must have the same architecture)."""
    a, b = weights(without), weights(with_item)
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("the two models have different architectures: their weights cannot be subtracted")
    return {k: a[k] - b[k] for k in a}


def layer_of(name: str, depth: int = 3) -> str:
    """Group a parameter name into its layer: 'unet.down_blocks.0.resnets.0.conv1.weight' -> 'unet.down_blocks.0'."""
    parts = name.split(".")
    if len(parts) > 1 and parts[0] == "unet":
        parts = parts[1:]
    cut = depth if len(parts) > 2 and parts[1].isdigit() else min(2, depth)
    return ".".join(parts[: max(1, min(cut, len(parts) - 1))])


def layer_norms(delta: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> list[dict]:
    """Per layer: the difference's norm, the reference weights' norm and their ratio; plus the total."""
    sq_delta: dict[str, float] = defaultdict(float)
    sq_ref: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for name, tensor in delta.items():
        layer = layer_of(name)
        sq_delta[layer] += float((tensor**2).sum())
        sq_ref[layer] += float((reference[name] ** 2).sum())
        count[layer] += tensor.numel()
    rows = [
        {
            "layer": layer,
            "parameters": count[layer],
            "diff_norm": float(np.sqrt(sq_delta[layer])),
            "weight_norm": float(np.sqrt(sq_ref[layer])),
            "relative": float(np.sqrt(sq_delta[layer] / max(sq_ref[layer], 1e-30))),
        }
        for layer in sq_delta
    ]
    total_d, total_r = sum(sq_delta.values()), sum(sq_ref.values())
    rows.append(
        {
            "layer": "all",
            "parameters": sum(count.values()),
            "diff_norm": float(np.sqrt(total_d)),
            "weight_norm": float(np.sqrt(total_r)),
            "relative": float(np.sqrt(total_d / max(total_r, 1e-30))),
        }
    )
    return rows


def apply(model: FamilyModel, delta: dict[str, torch.Tensor], scale: float = 1.0) -> FamilyModel:
    """A copy of `model` with `scale · delta` added to its weights."""
    out = copy.deepcopy(model)
    state = out.state_dict()
    missing = set(delta) - set(state)
    if missing:
        raise ValueError(f"the difference has weights this model lacks: {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, tensor in delta.items():
            state[name].add_((scale * tensor).to(state[name].dtype))
    return out.eval()
