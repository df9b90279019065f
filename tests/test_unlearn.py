"""Unlearning: every method runs, retraining truly excludes the item, SISA retrains one shard only, the measures
see a planted copy (and its absence), the diff round-trips, and the chapter's control recomputes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnistmem.dataspec import DataSpec
from mnistmem.models.base import FamilyModel
from mnistmem.unlearn import (
    ItemError,
    diff,
    finetune,
    item_image,
    load_state,
    measures,
    neggrad,
    relearn,
    retrain,
    save_state,
    sisa,
    spec_without,
    train_from_scratch,
)

SETTINGS = {"family": "diffusion", "model_kwargs": {"channels": [8, 16, 16]}, "batch_size": 8}
SPEC = DataSpec.from_dict({"n": 24, "seed": 0, "canaries": [{"glyph": "copyright", "count": 8}]})
STEPS = 4


@pytest.fixture(scope="module")
def data():
    return SPEC.build()


@pytest.fixture(scope="module")
def base(data):
    return train_from_scratch(data, SETTINGS, STEPS, 0)[0]


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------------------------------- methods
def test_each_method_runs_and_reports_its_cost(data, base, tmp_path):
    digit = int(SPEC.indices()[3])
    for source in (-1, digit):
        for state, cost in (
            retrain(SPEC, source, SETTINGS, STEPS, 0),
            finetune(base, data, source, 2, 1),
            neggrad(base, data, source, 2, 2),
            relearn(base, data, source, 2, 3),
        ):
            assert cost.steps > 0 and cost.images >= cost.steps * SETTINGS["batch_size"] and cost.seconds > 0
            assert not same_weights(state.model, base.model)
        layout, _ = sisa.train(data, SETTINGS, 2, 2, STEPS, 0, tmp_path / f"a{source}")
        _, cost, info = sisa.forget(layout, data, source, STEPS, 0, tmp_path / f"b{source}")
        assert 0 < cost.steps <= STEPS and info["retrained_steps"] == cost.steps
    # NegGrad processes the forget batch too: more images than plain fine-tuning for the same steps.
    assert neggrad(base, data, -1, 2, 2)[1].images > finetune(base, data, -1, 2, 1)[1].images
    # The approximate methods never change the model they start from.
    assert same_weights(base.model, load_roundtrip(base, tmp_path).model)


def load_roundtrip(state, tmp_path):
    save_state(state, tmp_path / "roundtrip")
    return load_state(tmp_path / "roundtrip")


def test_same_seed_same_initial_weights_and_exact_save_load(base, tmp_path):
    from mnistmem.checkpoints import load_model
    from mnistmem.unlearn import new_state

    a = new_state("diffusion", SETTINGS["model_kwargs"], 5, 8)
    b = new_state("diffusion", SETTINGS["model_kwargs"], 5, 8)
    assert same_weights(a.model, b.model)
    assert not same_weights(a.model, new_state("diffusion", SETTINGS["model_kwargs"], 6, 8).model)
    again = load_roundtrip(base, tmp_path)
    assert same_weights(again.model, base.model) and again.step == base.step
    assert same_weights(load_model(tmp_path / "roundtrip"), base.sampling_model())  # EMA weights, as the book samples


def test_retraining_truly_excludes_the_item(data):
    digit = int(SPEC.indices()[5])
    image = item_image(data, digit)
    for source in (digit, -1):
        kept = spec_without(SPEC, source).build()
        assert not (kept.sources == source).any()
        assert len(kept) == len(data) - int((data.sources == source).sum())
    kept = spec_without(SPEC, digit).build()
    assert not (kept.images == image).all(axis=(1, 2)).any()
    canary = item_image(data, -1)
    assert not (spec_without(SPEC, -1).build().images == canary).all(axis=(1, 2)).any()
    with pytest.raises(ItemError):
        spec_without(SPEC, 59_999 if 59_999 not in SPEC.indices() else 0)
    with pytest.raises(ItemError):
        spec_without(SPEC, -2)


def test_bad_input_is_refused(base, data):
    with pytest.raises(ValueError, match="forget_weight"):
        neggrad(base, data, -1, 1, 0, forget_weight=0)
    with pytest.raises(ValueError, match="empty"):
        from mnistmem.unlearn import fit

        fit(base.clone(), data.images[:0], data.labels[:0], 1, 0)
    with pytest.raises(ValueError, match="shards"):
        sisa.assign(data.sources, 0, 1)


# ----------------------------------------------------------------------------------------------------- SISA
def test_sisa_retrains_only_the_affected_shard(data, tmp_path):
    shards, slices = 3, 2
    shard_of, slice_of = sisa.assign(data.sources, shards, slices)
    canary_rows = data.sources == -1
    assert len(set(shard_of[canary_rows])) == 1 and len(set(slice_of[canary_rows])) == 1  # copies stay together
    layout, _ = sisa.train(data, SETTINGS, shards, slices, 4, 0, tmp_path / "before")
    new, cost, info = sisa.forget(layout, data, -1, 4, 0, tmp_path / "after")
    k, r = info["shard"], info["slice"]
    assert cost.steps == sum(sisa._slice_steps(4, slices)[r:])

    def weights_file(lay, shard, part):
        return next(lay.slice_dir(shard, part).rglob("model.safetensors")).read_bytes()

    for j in range(shards):
        for part in range(-1, slices):
            same = weights_file(layout, j, part) == weights_file(new, j, part)
            assert same == (j != k or part < r), (j, part)


def test_sisa_mixture_picks_shards_by_seed():
    seeds = measures.sample_seeds(3, 2000)
    which = sisa.choose_shards(seeds, np.array([1.0, 3.0]))
    assert np.array_equal(which, sisa.choose_shards(seeds, np.array([1.0, 3.0])))
    assert 0.7 < which.mean() < 0.8  # about 3/4 of samples from the larger shard
    with pytest.raises(ValueError):
        sisa.choose_shards(seeds, np.array([0.0, 0.0]))


# ------------------------------------------------------------------------------------------------ measures
class Memorizer(FamilyModel):
    """A planted "model" that reproduces its training images: each sample is a training row (picked by the
    sample's seed) plus faint noise. Stands in for a model that has memorised its data."""

    family = "memorizer"

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self.images = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def generate(self, generators, labels=None, **kwargs):
        rows = [int(torch.randint(len(self.images), (1,), generator=g)) for g in generators]
        noise = torch.stack([torch.randn(28, 28, generator=g) for g in generators]) * 0.01
        return (self.images[rows] + noise).unsqueeze(1).clamp(-1, 1)

    def loss(self, images, seed=0):
        x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
        return torch.cdist(x.flatten(1), self.images.flatten(1)).min(1).values.double().numpy()


def test_measures_see_a_planted_copy_and_its_absence(data):
    from mnistmem import data as mnist
    from mnistmem.canaries import render_canaries

    train, _ = mnist.load_mnist("train")
    test, _ = mnist.load_mnist("test")
    reference = measures.reference_set(train, render_canaries(["copyright"]))
    canary_row = measures.reference_index(-1, len(train))
    control = int(SPEC.indices()[0])
    kept = spec_without(SPEC, -1).build()
    outcomes = {}
    for name, rows in (("original", data), ("retrained", kept)):
        model = Memorizer(rows.images)
        images, _, _ = measures.draw([model], 64, seed=1)
        distance, index = measures.nearest(images, reference)
        outcomes[name] = (
            measures.reproduction(images, reference[canary_row], canary_row, distance, index),
            measures.reproduction(images, train[control], control, distance, index),
            measures.membership(model.loss, reference[canary_row], test[:20]),
        )
    canary, ctrl, member = outcomes["original"]
    assert canary["share"] > 0.1 and canary["closest_distance"] < 0.75 and member["rank"] == 0.0
    canary, ctrl_after, member = outcomes["retrained"]
    assert canary["hits"] == 0 and canary["closest_distance"] > 5 and member["rank"] > 0.5
    assert ctrl["hits"] > 0 and ctrl_after["hits"] > 0  # the control is not erased


def test_copy_share_and_reproduction_thresholds():
    d = np.array([[0.0, 0.0], [1.0, 4.0], [3.0, 4.0]])
    assert measures.copy_share(d) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------------------------------- diff
def test_diff_roundtrips_and_reports_per_layer(base, data):
    retrained = retrain(SPEC, -1, SETTINGS, STEPS, 0)[0].sampling_model()
    original = base.sampling_model()
    delta = diff.difference(retrained, original)
    rebuilt = diff.apply(original, delta, 1.0)
    for (name, a), b in zip(rebuilt.state_dict().items(), retrained.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    rows = diff.layer_norms(delta, diff.weights(original))
    assert rows[-1]["layer"] == "all" and rows[-1]["diff_norm"] > 0
    assert rows[-1]["diff_norm"] ** 2 == pytest.approx(sum(r["diff_norm"] ** 2 for r in rows[:-1]))
    assert same_weights(diff.apply(original, delta, 0.0), original)


# ------------------------------------------------------------------------------------------------------ CLI
def test_cli_runs_and_refuses_bad_items(tmp_path, capsys):
    from mnistmem.cli import main

    out = tmp_path / "report.json"
    args = [
        "unlearn",
        "--method",
        "finetune",
        "--forget",
        "canary",
        "--n",
        "16",
        "--steps",
        "2",
        "--unlearn-steps",
        "1",
    ]
    assert main([*args, "--samples", "4", "--sampler-steps", "2", "--batch-size", "8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["method"] == "finetune" and report["cost"]["steps"] == 1 and "share" in report["after"]
    assert main(["unlearn", "--method", "retrain", "--forget", "5", "--n", "16"]) == 2
    assert "not in this training set" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------- widget
class FakeResult:
    """Just enough of an `ExperimentResult` for the chapter's control: summaries and sample files."""

    scale = "smoke"

    def __init__(self, folder, summaries, files):
        self.folder, self.summaries, self.files, self.manifest = folder, summaries, files, {}

    def summary(self, stage):
        return self.summaries[stage]

    def stage(self, stage):
        return {"config": {"data": {"canaries": [{"glyph": "copyright", "count": 8}]}}}

    def path(self, stage, file):
        return self.files[(stage, file)]

    def samples(self, stage, file="samples.npz"):
        from mnistmem.results import load_samples

        return load_samples(self.path(stage, file))


def test_forget_explorer_recomputes_when_a_value_changes(tmp_path):
    pytest.importorskip("ipywidgets")
    from mnistmem.canaries import render_canary
    from mnistmem.results import save_samples
    from mnistmem.unlearning_widget import ForgetExplorer

    canary = render_canary("copyright")
    rng = np.random.default_rng(0)
    files, summaries = {}, {}

    def outcome(share):
        item = {"source": -1, "kind": "canary", "name": "canary"}
        return {
            "forgotten": {
                "item": item,
                "share": share,
                "closest_distance": 1.0,
                "closest_sample": 0,
                "n": 8,
                "membership": {"rank": 0.5},
            },
            "control": None,
        }

    for k, method in enumerate(("retrain", "sisa", "finetune", "neggrad")):
        stage = f"{method}_canary"
        images = rng.integers(0, 50, (8, 28, 28), dtype=np.uint8)
        images[k] = canary  # a different sample copies the canary in each method's output
        for file in ("samples.npz", "relearned.npz"):
            files[(stage, file)] = tmp_path / f"{stage}_{file}"
            save_samples(files[(stage, file)], images, np.arange(8))
        summaries[stage] = {
            "cost": {"steps": 10 * (k + 1), "images": 80 * (k + 1), "seconds": 1.0},
            "after": outcome(0.1 * k),
            "relearned": outcome(0.2),
        }
    summaries["retrain_digit"] = {"skipped": "no digit copied"}
    summaries["diff_canary"] = {"applied": {}}
    control = ForgetExplorer(FakeResult(tmp_path, summaries, files))
    first = control.output.value
    assert "sample 0, d=0.00" in first
    control.method.value = "neggrad"
    assert control.output.value != first and "sample 3, d=0.00" in control.output.value
