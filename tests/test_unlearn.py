"""Unlearning: every method runs, retraining truly excludes the item, SISA retrains one shard only, the measures
see a planted copy (and its absence), the diff round-trips, and the chapter's control recomputes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mnistmem import checkpoints, sampling
from mnistmem.dataspec import DataSpec
from mnistmem.models.base import FamilyModel
from mnistmem.training import TrainConfig
from mnistmem.unlearn import (
    ItemError,
    diff,
    finetune,
    item_image,
    measures,
    neggrad,
    relearn,
    retrain,
    run,
    sisa,
    spec_only,
    spec_without,
)

SPEC = DataSpec.from_dict({"n": 24, "seed": 0, "canaries": [{"glyph": "copyright", "count": 8}]})
STEPS = 4
ORIGINAL = TrainConfig(
    model="diffusion",
    model_kwargs={"channels": [8, 16, 16]},
    data=SPEC,
    steps=STEPS,
    batch_size=8,
    checkpoint_every=STEPS,
)


@pytest.fixture(scope="module")
def data():
    return SPEC.build()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The original model's final checkpoint (a run of the project trainer)."""
    return run(ORIGINAL, tmp_path_factory.mktemp("base") / "run")[0]


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def weights_of(checkpoint):
    return checkpoints.load_model(checkpoint)


# ------------------------------------------------------------------------------------------------- methods
def test_each_method_runs_and_reports_its_cost(base, tmp_path):
    before = (base / checkpoints.MODEL).read_bytes()
    digit = int(SPEC.indices()[3])
    for source in (-1, digit):
        for name, (final, cost) in {
            "retrain": retrain(ORIGINAL, source, tmp_path / f"retrain{source}"),
            "finetune": finetune(ORIGINAL, base, source, 2, 1, tmp_path / f"finetune{source}"),
            "neggrad": neggrad(ORIGINAL, base, source, 2, 2, tmp_path / f"neggrad{source}"),
            "relearn": relearn(ORIGINAL, base, source, 2, 3, tmp_path / f"relearn{source}"),
        }.items():
            assert cost.steps > 0 and cost.images >= cost.steps * ORIGINAL.batch_size and cost.seconds > 0, name
            assert not same_weights(weights_of(final), weights_of(base)), name
            # what each model was trained on is in its checkpoint: never the item's rows (NegGrad ascends them)
            config = TrainConfig.from_dict(checkpoints.read_state(final)["config"])
            assert source not in config.data.build().sources, name
        layout, _ = sisa.train(ORIGINAL, 2, 2, STEPS, 0, tmp_path / f"a{source}")
        _, cost, info = sisa.forget(layout, ORIGINAL, source, STEPS, 0, tmp_path / f"b{source}")
        assert 0 < cost.steps <= STEPS and info["retrained_steps"] == cost.steps
    # NegGrad processes the forget batch too: more images than plain fine-tuning for the same steps.
    ng = neggrad(ORIGINAL, base, -1, 2, 2, tmp_path / "ng")[1]
    ft = finetune(ORIGINAL, base, -1, 2, 1, tmp_path / "ft")[1]
    assert ng.images == ft.images + 2 * 8  # two steps, each with a forget batch of the canary's 8 rows
    # The methods never change the model they start from.
    assert (base / checkpoints.MODEL).read_bytes() == before


def test_retraining_starts_from_the_same_initial_weights_and_continuing_from_the_checkpoint(base, tmp_path):
    """Retraining without the item differs from the original only by the item (same seed, same initial
    weights); a continued run starts from the checkpoint's weights, optimizer moments and EMA."""
    from mnistmem.training import TrainingRun

    a = TrainingRun(ORIGINAL, torch.device("cpu"), False).model
    b = TrainingRun(replace(ORIGINAL, data=spec_without(SPEC, -1)), torch.device("cpu"), False).model
    assert same_weights(a, b)
    assert not same_weights(a, TrainingRun(replace(ORIGINAL, seed=6), torch.device("cpu"), False).model)
    # zero learning rate: the continued run's weights are the checkpoint's, bit for bit
    frozen, _ = run(
        replace(
            ORIGINAL,
            data=spec_without(SPEC, -1),
            init_from=str(base),
            lr=1e-30,
            steps=1,
            checkpoint_every=1,
            ema=None,
        ),
        tmp_path / "frozen",
    )
    start = checkpoints.read_tensors(base / checkpoints.MODEL)
    after = checkpoints.read_tensors(frozen / checkpoints.MODEL)
    assert all(torch.allclose(start[k], after[k], atol=1e-20, rtol=0) for k in start)


def test_a_continued_run_is_pinned_to_its_starting_checkpoint(base, tmp_path):
    """`init_from` is part of a run's identity by content: a changed starting checkpoint is refused, and a config
    naming another family or size is refused before any step."""
    import shutil

    from mnistmem.training import ConfigError

    copy = tmp_path / "start"
    shutil.copytree(base, copy)
    config = replace(ORIGINAL, init_from=str(copy), steps=1, checkpoint_every=1)
    assert config.init_digest == checkpoints.state_digest(copy)
    state = json.loads((copy / checkpoints.STATE).read_text())
    (copy / checkpoints.STATE).write_text(json.dumps({**state, "step": 999}))
    with pytest.raises(ConfigError, match="has changed since"):
        run(config, tmp_path / "continued")
    with pytest.raises(ConfigError, match="model with"):
        run(replace(ORIGINAL, model_kwargs={"channels": [8, 8, 8]}, init_from=str(base)), tmp_path / "other")
    with pytest.raises(ConfigError, match="forget_weight"):
        replace(ORIGINAL, forget=spec_only(SPEC, -1), forget_weight=0.0)


def test_retraining_truly_excludes_the_item(data):
    digit = int(SPEC.indices()[5])
    image = item_image(data, digit)
    for source in (digit, -1):
        kept = spec_without(SPEC, source).build()
        assert not (kept.sources == source).any()
        assert len(kept) == len(data) - int((data.sources == source).sum())
        alone = spec_only(SPEC, source).build()
        assert (alone.sources == source).all() and len(alone) == int((data.sources == source).sum())
    kept = spec_without(SPEC, digit).build()
    assert not (kept.images == image).all(axis=(1, 2)).any()
    canary = item_image(data, -1)
    assert not (spec_without(SPEC, -1).build().images == canary).all(axis=(1, 2)).any()
    with pytest.raises(ItemError):
        spec_without(SPEC, 59_999 if 59_999 not in SPEC.indices() else 0)
    with pytest.raises(ItemError):
        spec_without(SPEC, -2)
    # a spec restricted to some sources (a SISA shard) loses the item from that list too
    shard = replace(SPEC, only=(digit, -1))
    assert set(spec_without(shard, -1).build().sources.tolist()) == {digit}
    assert set(spec_without(shard, digit).build().sources.tolist()) == {-1}


def test_nearby_digits_are_the_nearest_look_alikes_the_model_never_saw_and_never_a_copy_of_the_item():
    from mnistmem.unlearn.items import nearby_digits

    item = np.zeros((28, 28), np.uint8)
    pool = np.zeros((6, 28, 28), np.uint8)
    for k in range(6):
        pool[k, 0, :k] = 255  # image k differs from the item by k bright pixels: distance grows with k
    index, distance = nearby_digits(item, pool, held=np.array([2]), count=3, farther_than=0.0)
    assert index.tolist() == [1, 3, 4]  # 0 is the item itself (distance 0), 2 was trained on
    assert np.all(np.diff(distance) > 0)
    assert nearby_digits(item, pool, np.array([], np.int64), 10, 0.0)[0].tolist() == [1, 2, 3, 4, 5]


def test_the_relearning_attack_trains_on_the_retained_data_and_the_look_alikes_never_the_item(base, tmp_path):
    outside = tuple(int(i) for i in np.setdiff1d(np.arange(100), SPEC.indices())[:3])
    for source in (-1, int(SPEC.indices()[2])):
        final, _ = relearn(ORIGINAL, base, source, 2, 3, tmp_path / f"relearn{source}", nearby=outside)
        built = TrainConfig.from_dict(checkpoints.read_state(final)["config"]).data.build()
        assert source not in built.sources and set(outside) <= set(built.sources.tolist())
        assert len(built) == len(spec_without(SPEC, source).build()) + len(outside)
    layout, _ = sisa.train(ORIGINAL, 2, 2, STEPS, 0, tmp_path / "sisa")
    finals, _ = sisa.relearn(layout, ORIGINAL, -1, 2, 3, 0, tmp_path / "sisa_relearn", nearby=outside)
    for final in finals:  # every shard model is attacked with the look-alikes, none sees the item
        built = TrainConfig.from_dict(checkpoints.read_state(final)["config"]).data.build()
        assert -1 not in built.sources and set(outside) <= set(built.sources.tolist())


def test_a_relearning_stage_paused_in_either_training_resumes_to_the_same_result(smoke_results, tmp_path):
    """The fine-tuning stage trains twice (the method, then the relearning attack on its result): stopped at
    every chance the trainer gets, over several sittings, it ends with the same summary as one whole run."""
    import shutil
    import time

    from mnistmem.experiments import get
    from mnistmem.experiments.runner import run_experiment
    from mnistmem.training import TrainingPaused

    root = tmp_path / "results"
    shutil.copytree(smoke_results, root)
    folder = root / "smoke" / "unlearning"
    (folder / "manifest.json").unlink()
    for stage in folder.glob("finetune_canary-*"):
        shutil.rmtree(stage)
    sittings, relearn_paused = 0, False
    while True:
        try:
            run_experiment(
                get("unlearning"),
                "smoke",
                root,
                False,
                lambda _: None,
                only={"finetune_canary"},
                deadline=time.monotonic(),
            )
            break
        except TrainingPaused:
            sittings += 1
            relearn_paused |= any(folder.glob("finetune_canary-*/scratch/relearn/*"))
    assert sittings >= 2 and relearn_paused
    run_experiment(get("unlearning"), "smoke", root, False, lambda _: None)

    def summaries(base):
        stages = json.loads((base / "smoke" / "unlearning" / "manifest.json").read_text())["stages"]
        return {name: record["summary"] for name, record in stages.items()}

    def without_seconds(value):  # wall-clock seconds differ between sittings; nothing else may
        if isinstance(value, dict):
            return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
        return [without_seconds(v) for v in value] if isinstance(value, list) else value

    resumed, whole = without_seconds(summaries(root)), without_seconds(summaries(smoke_results))
    assert resumed == whole


def test_bad_input_is_refused(base, tmp_path):
    with pytest.raises(ValueError, match="forget_weight"):
        neggrad(ORIGINAL, base, -1, 1, 0, tmp_path / "x", forget_weight=0)
    with pytest.raises(ValueError, match="shards"):
        sisa.assign(SPEC.build().sources, 0, 1)
    with pytest.raises(ValueError, match="at least one step"):
        sisa.train(ORIGINAL, 2, 3, 2, 0, tmp_path / "sisa")


# ----------------------------------------------------------------------------------------------------- SISA
def test_sisa_retrains_only_the_affected_shard(data, tmp_path):
    shards, slices = 3, 2
    shard_of, slice_of = sisa.assign(data.sources, shards, slices)
    canary_rows = data.sources == -1
    assert len(set(shard_of[canary_rows])) == 1 and len(set(slice_of[canary_rows])) == 1  # copies stay together
    layout, _ = sisa.train(ORIGINAL, shards, slices, 4, 0, tmp_path / "before")
    new, cost, info = sisa.forget(layout, ORIGINAL, -1, 4, 0, tmp_path / "after")
    k, r = info["shard"], info["slice"]
    assert cost.steps == sum(sisa._slice_steps(4, slices)[r:])

    def weights_file(lay, shard, part):
        return (checkpoints.resolve_checkpoint(lay.slice_dir(shard, part)) / checkpoints.MODEL).read_bytes()

    for j in range(shards):
        for part in range(slices):
            same = weights_file(layout, j, part) == weights_file(new, j, part)
            assert same == (j != k or part < r), (j, part)
        # each slice's model records the rows it was trained on: its shard's slices so far, never the item after
        for part in range(slices):
            state = checkpoints.read_state(checkpoints.resolve_checkpoint(new.slice_dir(j, part)))
            trained = set(TrainConfig.from_dict(state["config"]).data.build().sources.tolist())
            expected = set(data.sources[(shard_of == j) & (slice_of <= part)].tolist())
            assert trained == (expected - {-1} if (j, part) >= (k, r) and j == k else expected), (j, part)


def test_sisa_mixture_samples_regenerate_from_their_seeds(base, tmp_path):
    """The mixture picks each sample's shard model by a hash of its seed (in proportion to the weights), and a
    stored seed regenerates its sample bit for bit, whichever model drew it."""
    seeds = sampling.sample_seeds(3, 2000)
    which = sampling.mixture_choice(seeds, np.array([1.0, 3.0]))
    assert np.array_equal(which, sampling.mixture_choice(seeds, np.array([1.0, 3.0])))
    assert 0.7 < which.mean() < 0.8  # about 3/4 of samples from the larger shard
    with pytest.raises(ValueError):
        sampling.mixture_choice(seeds, np.array([0.0, 0.0]))
    other, _ = run(replace(ORIGINAL, seed=1), tmp_path / "other")
    models = [weights_of(base), weights_of(other)]
    images, seeds, drew = sampling.sample_mixture(models, [1.0, 2.0], 12, seed=4, batch_size=8, progress=False, steps=2)
    assert set(drew.tolist()) == {0, 1}
    for i in (0, 5, 9, 11):
        again = sampling.regenerate_mixture(models, [1.0, 2.0], int(seeds[i]), batch_size=8, steps=2)
        assert np.array_equal(again, images[i]), i
    # one model is the mixture of one: exactly `sampling.sample`
    alone, _ = sampling.sample(models[0], 12, seed=4, batch_size=8, progress=False, steps=2)
    assert np.array_equal(alone, sampling.sample_mixture(models[:1], None, 12, 4, 8, progress=False, steps=2)[0])


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
        images, _ = sampling.sample(model, 64, seed=1, progress=False)
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
def test_diff_roundtrips_and_reports_per_layer(base, tmp_path):
    retrained = weights_of(retrain(ORIGINAL, -1, tmp_path / "retrained")[0])
    original = weights_of(base)
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
        data = {"n": 24, "canaries": [{"glyph": "copyright", "count": 8}]}
        return {"config": {"train": {"data": data, "steps": 4, "batch_size": 8}, "n_samples": 8, "relearn_steps": 2}}

    def path(self, stage, file):
        return self.files[(stage, file)]

    def samples(self, stage, file="samples.npz"):
        from mnistmem.results import load_samples

        return load_samples(self.path(stage, file))

    def arrays(self, stage, file):
        with np.load(self.path(stage, file), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}


def test_forget_explorer_recomputes_when_a_value_changes(tmp_path):
    pytest.importorskip("ipywidgets")
    from mnistmem.book.unlearning_widget import ForgetExplorer
    from mnistmem.canaries import render_canary
    from mnistmem.results import save_samples

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
        images = rng.integers(0, 50, (9, 28, 28), dtype=np.uint8)
        images[k] = canary  # a different sample copies the canary in each method's output
        images[8] = canary  # marked as not stored: the control must never show it, however close it lies
        stored = np.arange(9) < 8
        for file in ("samples.npz", "relearned.npz"):
            files[(stage, file)] = tmp_path / f"{stage}_{file}"
            save_samples(files[(stage, file)], images, np.arange(9), stored=stored)
        summaries[stage] = {
            "cost": {"steps": 10 * (k + 1), "images": 80 * (k + 1), "seconds": 1.0},
            "after": outcome(0.1 * k),
            "relearned": outcome(0.2),
        }
    summaries["retrain_digit"] = {"skipped": "no digit copied"}
    for base in ("choose", "sisa_train"):  # what each method starts from, before any forgetting
        summaries[base] = {"before": {"canary": {"hits": 4, "n": 8, "share": 0.5}, "fid": 100.0}}
    summaries["diff_canary"] = {"applied": {}}
    control = ForgetExplorer(FakeResult(tmp_path, summaries, files))
    first = control.output.value
    assert "sample 0, d=0.00" in first and "sample 8," not in first
    control.method.value = "neggrad"
    assert control.output.value != first and "sample 3, d=0.00" in control.output.value
