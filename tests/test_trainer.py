"""Trainer: kill -9 and resume equals an uninterrupted run bit for bit; checkpoints; errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from mnistmem import checkpoints as ckpt
from mnistmem.checkpoints import CheckpointError, list_checkpoints, load_model
from mnistmem.dataspec import CanarySpec, DataSpec
from mnistmem.sampling import sample
from mnistmem.training import ConfigError, TrainConfig, batch_indices, read_metrics, train

from .conftest import TINY

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny_config(family="diffusion", steps=40, **overrides) -> TrainConfig:
    values = dict(
        model=family,
        model_kwargs=TINY[family],
        data=DataSpec(n=40, seed=1, canaries=(CanarySpec("©", 8),)),
        steps=steps,
        batch_size=16,
        checkpoint_every=8,
        log_every=4,
        seed=3,
        precision="fp32",
    )
    values.update(overrides)
    return TrainConfig(**values)


def start_training(config: TrainConfig, out: Path) -> subprocess.Popen:
    """Train in a separate process (as a user would), so it can really be killed with SIGKILL."""
    code = (
        "import json, sys, torch; torch.set_num_threads(2)\n"
        "from mnistmem.training import TrainConfig, train\n"
        "train(TrainConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], progress=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "MNISTMEM_DEVICE": "cpu"}
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(config.to_dict()), str(out)], env=env)


def assert_same_checkpoint(a: Path, b: Path) -> None:
    for name in (ckpt.MODEL, ckpt.EMA, ckpt.OPTIMIZER):
        if (a / name).exists() or (b / name).exists():
            ta, tb = load_file(str(a / name)), load_file(str(b / name))
            assert ta.keys() == tb.keys()
            for key in ta:
                assert ta[key].tobytes() == tb[key].tobytes(), f"{name}:{key} differs"


@pytest.mark.parametrize("family", ["diffusion", pytest.param("gan", marks=pytest.mark.slow)])
def test_kill_and_resume_equals_uninterrupted(family, tmp_path):
    """SIGKILL a training process after its first checkpoint, resume, and compare every tensor's bytes."""
    steps, every = (32, 8) if family == "diffusion" else (240, 40)
    # the whole recipe: warm-up, cosine schedule, gradient clipping, EMA warm-up, min-SNR weighting
    recipe = dict(lr_schedule="cosine", warmup_steps=5, grad_clip=0.5, ema=0.99, ema_warmup=True)
    if family == "diffusion":
        recipe["model_kwargs"] = {**TINY["diffusion"], "snr_gamma": 5.0}
    # log lines every 3 steps, checkpoints every 8: a resume starts in the middle of a logged window
    config = tiny_config(family, steps=steps, checkpoint_every=every, log_every=3, **recipe)
    victim = start_training(config, tmp_path / "killed")
    deadline = time.time() + 300
    while not list_checkpoints(tmp_path / "killed") and time.time() < deadline and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    found = list_checkpoints(tmp_path / "killed")
    assert found and found[-1][0] < config.steps, "the run must be killed mid-way"
    resumed = train(config, tmp_path / "killed", progress=False)
    uninterrupted = train(config, tmp_path / "reference", progress=False)
    assert_same_checkpoint(resumed, uninterrupted)
    assert not any(p.name.startswith(".") for p in (tmp_path / "killed" / "checkpoints").iterdir())

    # the logged losses (and so a stage's `final_loss`) equal the uninterrupted run's, not only the steps since
    # the checkpoint; throughput differs, naturally
    def losses(run):
        return [{k: v for k, v in line.items() if k != "images_per_s"} for line in read_metrics(run)]

    assert losses(tmp_path / "killed") == losses(tmp_path / "reference")


def test_checkpoints_kept_idempotent_and_loadable(tmp_path):
    config = tiny_config("vae", steps=24, checkpoint_every=4, keep_every=8)
    final = train(config, tmp_path, progress=False)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [8, 16, 24]
    mtime = (final / ckpt.STATE).stat().st_mtime_ns
    assert train(config, tmp_path, progress=False) == final  # already finished: returns at once
    assert (final / ckpt.STATE).stat().st_mtime_ns == mtime
    model = load_model(tmp_path)
    assert model.family == "vae" and model.step == 24 and model.config["data"]["canaries"][0]["count"] == 8
    assert TrainConfig.from_dict(model.config) == config
    images, _ = sample(model, 3, seed=0, progress=False)
    assert images.shape == (3, 28, 28)


@pytest.mark.parametrize("order", [("fp32", "bf16", "auto"), ("bf16", "fp32", "auto")])
def test_runs_of_different_precisions_follow_each_other_in_one_process(order, tmp_path):
    """A training run leaves no global state behind: fp32, bf16 and auto runs in any order, one process.

    (The trainer used to build an `accelerate.Accelerator` per run; accelerate keeps one process-wide state
    and refused the second precision on CPUs where auto resolves to bf16.) bf16 autocast works on every CPU,
    only its speed differs, so this runs the same on AVX2-only and AVX-512/AMX machines.
    """

    from mnistmem.training import resolve_precision

    for i, precision in enumerate(order):
        final = train(tiny_config("vae", steps=2, precision=precision), tmp_path / str(i), progress=False)
        state = json.loads((final / ckpt.STATE).read_text())
        assert state["precision"] == resolve_precision(precision, torch.device("cpu"))
    assert not torch.is_autocast_enabled("cpu")  # nothing left switched on after the runs


def test_learning_rate_schedule():
    config = tiny_config("vae", steps=100, lr_schedule="cosine", warmup_steps=10, lr=0.01)
    factors = [config.lr_factor(step) for step in range(100)]
    assert factors[0] == 0.1 and factors[9] == 1.0  # linear warm-up to the full rate
    assert factors[10] == 1.0 and abs(factors[55] - 0.5) < 1e-12 and factors[-1] < 0.001  # half cosine to 0
    assert config.schedule_steps == 100  # fixed at creation: resuming with more steps keeps the schedule
    longer = TrainConfig.from_dict({**config.to_dict(), "steps": 200})
    assert longer.identity() == config.identity() and longer.lr_factor(150) == 0.0
    assert tiny_config("vae").lr_factor(7) == 1.0  # constant, no warm-up: the default
    for bad in (
        dict(lr_schedule="linear"),
        dict(warmup_steps=-1),
        dict(grad_clip=0.0),
        dict(ema=None, ema_warmup=True),
    ):
        with pytest.raises(ConfigError):
            tiny_config("vae", **bad)
    with pytest.raises(ConfigError, match="above warmup_steps"):
        tiny_config("vae", lr_schedule="cosine", steps=10, warmup_steps=10)


def test_gradient_clipping_and_the_schedule_reach_the_optimizer(tmp_path):
    """The gradients an optimizer steps with have at most the clip's norm; the logged lr follows the schedule."""
    from mnistmem.data import load_mnist
    from mnistmem.models.base import to_model_input
    from mnistmem.training import TrainingRun

    images, labels = load_mnist("train")
    x, y = to_model_input(images[:16]), torch.from_numpy(np.asarray(labels[:16]))
    norms = {}
    for clip in (None, 0.01):
        run = TrainingRun(tiny_config("vae", grad_clip=clip), torch.device("cpu"), channels_last=False)
        run.step(x, y, "fp32", lambda loss: loss.backward())
        norms[clip] = float(torch.norm(torch.stack([p.grad.norm() for p in run.model.parameters()])))
    assert norms[None] > 1.0 and norms[0.01] == pytest.approx(0.01, rel=1e-3)
    config = tiny_config("vae", steps=8, checkpoint_every=8, log_every=1, lr=0.01, lr_schedule="cosine", warmup_steps=4)
    train(config, tmp_path, progress=False)
    logged = [m["lr"] for m in read_metrics(tmp_path)]
    assert logged == pytest.approx([0.01 * config.lr_factor(step) for step in range(8)])


def test_min_snr_weights():
    from mnistmem.models import build_model

    model = build_model("diffusion", **TINY["diffusion"], snr_gamma=5.0)
    t = torch.tensor([0, 500, 999])
    weights = model.loss_weights(t)
    alphas = model.scheduler.alphas_cumprod[t]
    snr = alphas / (1 - alphas)
    assert torch.allclose(weights, torch.clamp(snr, max=5.0) / snr)
    assert weights[0] < 0.01 and weights[2] == 1.0  # the nearly clean end is damped, the noisy end is not
    assert build_model("diffusion", **TINY["diffusion"]).model_kwargs.get("snr_gamma") is None


def test_resume_refuses_a_different_run(tmp_path):
    train(tiny_config("vae", steps=4), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="different run"):
        train(tiny_config("vae", steps=4, lr=0.5), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="resume"):
        train(tiny_config("vae", steps=4), tmp_path, resume=False, progress=False)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    final = train(tiny_config("vae", steps=4), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="holds a 'vae' model, not a 'gan'"):
        load_model(final, family="gan")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="neither a checkpoint"):
        load_model(tmp_path)
    good_weights = (final / ckpt.MODEL).read_bytes()
    (final / ckpt.MODEL).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=r"has SHA-256 .*refused"):
        load_model(final)
    (final / ckpt.MODEL).write_bytes(good_weights)
    state = json.loads((final / ckpt.STATE).read_text())
    state.update(family="gan", model_kwargs=TINY["gan"])  # VAE weights under a GAN's description
    (final / ckpt.STATE).write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(final)
    state.update(family="transformer")
    (final / ckpt.STATE).write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="known model"):
        load_model(final)


def test_batches_cover_each_epoch_once():
    rows = np.concatenate([batch_indices(s, 16, 40, seed=2) for s in range(5)])  # 80 rows = 2 epochs
    assert sorted(rows[:40]) == list(range(40)) and sorted(rows[40:]) == list(range(40))
    assert np.array_equal(batch_indices(3, 16, 40, seed=2), batch_indices(3, 16, 40, seed=2))


def test_cli_errors(tmp_path):
    from mnistmem.cli import main

    assert main(["train", "--model", "transformer", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--model", "gan", "--out", str(tmp_path / "x"), "--canary", "©"]) == 2
    (tmp_path / "bad").mkdir()
    assert main(["sample", str(tmp_path / "bad"), "--out", str(tmp_path / "s.npz")]) == 2


def test_cli_train_and_sample(tmp_path, capsys):
    from mnistmem.cli import main

    run = tmp_path / "run"
    args = [
        "train",
        "--model",
        "gan",
        "--out",
        str(run),
        "--n",
        "32",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--model-kwargs",
        json.dumps(TINY["gan"]),
        "--canary",
        "section:2",
        "--no-progress",
    ]
    assert main(args) == 0
    out = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "5", "--batch-size", "4", "--out", str(out), "--no-progress"]) == 0
    with np.load(out, allow_pickle=False) as saved:
        images, seeds, meta = saved["images"], saved["seeds"], json.loads(str(saved["meta"]))
    assert images.shape == (5, 28, 28) and meta["family"] == "gan"
    one = tmp_path / "one.npz"
    assert main(["sample", str(run), "--regenerate", str(seeds[4]), "--batch-size", "4", "--out", str(one)]) == 0
    with np.load(one, allow_pickle=False) as saved:
        assert np.array_equal(saved["images"][0], images[4])


def test_a_time_budget_pauses_at_a_checkpoint_and_resuming_ends_bit_identical(tmp_path):
    """Training in sittings of bounded wall time (`deadline`) equals one uninterrupted run, byte for byte."""
    import time

    from mnistmem.training import TrainingPaused

    config = tiny_config("vae", steps=12, checkpoint_every=5, lr_schedule="cosine", warmup_steps=2)
    sittings = 0
    while True:
        try:
            final = train(config, tmp_path / "sittings", progress=False, deadline=time.monotonic())
            break
        except TrainingPaused as paused:
            sittings += 1
            assert paused.step == sittings and paused.steps == 12  # one step per sitting: the budget is spent
            assert list_checkpoints(tmp_path / "sittings")[-1][0] == paused.step
    assert sittings == 11
    assert [s for s, _ in list_checkpoints(tmp_path / "sittings")] == [12]  # off-grid pause points pruned
    assert_same_checkpoint(final, train(config, tmp_path / "straight", progress=False))
    # the loss curve too: each logged line averages the same steps, however the run was cut
    losses = [(m["step"], m["loss"]) for m in read_metrics(tmp_path / "sittings")]
    assert losses == [(m["step"], m["loss"]) for m in read_metrics(tmp_path / "straight")]


def test_a_second_training_process_on_the_same_folder_is_refused_in_one_line(tmp_path):
    """Two runs into one folder once both did all the work and wrote each line of metrics.jsonl twice."""
    from mnistmem.atomic import exclusive

    with exclusive(tmp_path, lambda: RuntimeError("the other process")):
        with pytest.raises(ConfigError, match="being trained by another process"):
            train(tiny_config("vae", steps=2), tmp_path, progress=False)
    assert not list_checkpoints(tmp_path)


def test_a_continued_neggrad_run_resumes_bit_identical_and_counts_its_cost_once(tmp_path):
    """The unlearning runs are configurations of this trainer: a run continuing a checkpoint (`init_from`) with an
    ascent term (`forget`) paused at every step and resumed ends byte for byte like one uninterrupted run, with
    the same cost record (steps and images; seconds summed over the sittings)."""
    from dataclasses import replace

    from mnistmem.training import TrainingPaused, run_cost

    base = train(tiny_config("diffusion", steps=4), tmp_path / "base", progress=False)
    canary = replace(tiny_config().data, only=(-1,))
    without = replace(tiny_config().data, canaries=(CanarySpec("©", 0),))
    config = tiny_config(
        "diffusion", steps=5, data=without, init_from=str(base), forget=canary, forget_weight=0.5, grad_clip=1.0
    )
    while True:
        try:
            final = train(config, tmp_path / "sittings", progress=False, deadline=time.monotonic())
            break
        except TrainingPaused:
            pass
    straight = train(config, tmp_path / "straight", progress=False)
    assert_same_checkpoint(final, straight)
    cost, once = run_cost(final), run_cost(straight)
    assert (cost.steps, cost.images) == (once.steps, once.images) == (5, 5 * (16 + 8))  # 8 canary rows a step
    assert cost.seconds > 0
    forget_losses = [m["forget_loss"] for m in read_metrics(tmp_path / "straight")]
    assert forget_losses and all(np.isfinite(forget_losses))


def test_ascent_raises_the_loss_on_the_forget_rows_that_plain_fine_tuning_lowers(tmp_path):
    """NegGrad's sign is right: continuing a model with the forget term makes it fit the canary worse than
    continuing it without (same start, same batches of retained data, same noise)."""
    from dataclasses import replace

    base = train(tiny_config("vae", steps=20), tmp_path / "base", progress=False)
    data = tiny_config().data
    canary = replace(data, only=(-1,))
    without = replace(data, canaries=(CanarySpec("©", 0),))
    common = dict(steps=15, data=without, init_from=str(base))
    tuned = load_model(train(tiny_config("vae", **common), tmp_path / "tuned", progress=False))
    ascended = load_model(
        train(tiny_config("vae", forget=canary, forget_weight=1.0, **common), tmp_path / "ascended", progress=False)
    )
    image = canary.build().images[:1]
    assert ascended.loss(image, seed=0)[0] > tuned.loss(image, seed=0)[0]


def test_forget_needs_a_one_optimizer_family(tmp_path):
    from dataclasses import replace

    canary = replace(tiny_config().data, only=(-1,))
    with pytest.raises(ConfigError, match="one optimizer"):
        train(tiny_config("gan", steps=1, forget=canary), tmp_path / "gan", progress=False)


def test_cli_fine_tunes_from_a_checkpoint_through_configuration(tmp_path, capsys):
    """`mnistmem train --init-from`: the same trainer continues a run on other data; the new run names its
    starting checkpoint by content (init_digest), and says where it finished."""
    from mnistmem.cli import main

    first = tmp_path / "first"
    config = tiny_config("vae", steps=2, checkpoint_every=2)
    assert train(config, first, progress=False).name == "step_00000002"
    second = tmp_path / "second"
    digit = str(int(config.data.indices()[0]))
    argv = ["train", "--config", str(first / "config.json"), "--init-from", str(first), "--exclude", digit]
    assert main([*argv, "--steps", "3", "--no-progress", "--out", str(second)]) == 0
    saved = json.loads((second / "config.json").read_text())
    assert saved["init_digest"] == ckpt.state_digest(ckpt.resolve_checkpoint(first))
    assert saved["data"]["exclude"] == [int(digit)] and "finished" in capsys.readouterr().out
