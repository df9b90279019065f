"""Machine unlearning for generative models: make a trained model forget one training item, and check.

Methods (each one function; `mnistmem unlearn --method ...` on the command line):
* `retrain`  — retrain from scratch without the item: exact, the gold standard and the cost baseline;
* `sisa`     — SISA sharded training (Bourtoule et al. 2021, arXiv 1912.03817): retrain one shard from the
               checkpoint before the item (`sisa.train`, `sisa.forget`);
* `finetune` — continue training on the retained data only (approximate);
* `neggrad`  — gradient ascent on the item balanced by descent on retained data (NegGrad+, Kurmanji et al.
               2023, arXiv 2302.09880; approximate);
* `diff`     — the weight difference between the models trained with and without the item, its size per
               layer, and what adding it to another model does (`diff.difference`, `diff.apply`).
Measures (`measures`): reproduction of the item and of a control among samples, quality, membership loss,
and (`methods.relearn`) whether the item comes back after a little more training without it.

Every method trains through the project's one trainer (`mnistmem.training.train`, configured from the
original model's `TrainConfig`), so each is resumable and costs are counted alike (`training.Cost`).
"""

from __future__ import annotations

from mnistmem.training import Cost
from mnistmem.unlearn import diff, measures, sisa
from mnistmem.unlearn.items import Item, ItemError, item_image, item_rows, spec_only, spec_without
from mnistmem.unlearn.methods import continued, finetune, neggrad, relearn, retrain, run

METHODS = ("retrain", "sisa", "finetune", "neggrad", "diff")

__all__ = [
    "METHODS",
    "Cost",
    "Item",
    "ItemError",
    "continued",
    "diff",
    "finetune",
    "item_image",
    "item_rows",
    "measures",
    "neggrad",
    "relearn",
    "retrain",
    "run",
    "sisa",
    "spec_only",
    "spec_without",
]
