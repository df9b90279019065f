"""Every misuse of the command line, and every altered artefact it is handed, ends in one clear line.

A table of cases, each run through `mnistmem.cli.main` as a user would type it: the answer must be exit code 2,
no traceback, exactly one line of error (argparse's usage lines aside) and, in that line, the name of the
argument or file and what to do. `classify` names what went wrong otherwise — a traceback, a success that
should have been a refusal, or an unclear refusal — so a failing case says which kind of failure it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mnistmem import cli, data
from mnistmem.dataspec import DataSpec
from mnistmem.training import TrainConfig, train

from .conftest import TINY


def run_cli(argv: list[str], capsys) -> tuple[str, int | None, str]:
    """(outcome, exit code, stderr) of one command: outcome is 'exit' or 'traceback'."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as stop:  # argparse, or a command that exits with a message
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            code = 1
        else:
            code = stop.code
    except Exception as error:  # what the user would see as a traceback
        return "traceback", None, f"{type(error).__name__}: {error}"
    return "exit", code, capsys.readouterr().err


def error_lines(stderr: str) -> list[str]:
    """The error lines as a terminal shows them, without argparse's usage lines and progress bars."""
    import re

    lines, in_usage = [], False
    for raw in stderr.split("\n"):
        line = raw.split("\r")[-1]  # what is left on screen after carriage returns
        if re.search(r"\d+%\|", line):
            continue
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and line.startswith(" "):
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def classify(outcome: str, code: int | None, stderr: str, expect: str) -> str:
    """'clear', 'traceback', 'accepted' (exit 0: nonsense taken as fine) or 'unclear' (wrong code, several
    lines, or a line that does not say what `expect` names)."""
    if outcome == "traceback" or "Traceback" in stderr:
        return "traceback"
    if code == 0:
        return "accepted"
    lines = error_lines(stderr)
    if code == 2 and len(lines) == 1 and expect.lower() in lines[0].lower():
        return "clear"
    return "unclear"


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny trained runs of each sampling family, sample files good and bad, and an empty folder."""
    root = tmp_path_factory.mktemp("misuse")
    made: dict[str, Path] = {"root": root}
    for family in ("gan", "diffusion"):
        made[family] = root / family
        train(
            TrainConfig(model=family, model_kwargs=TINY[family], data=DataSpec(n=16), steps=1, batch_size=8),
            made[family],
            progress=False,
        )
    (root / "folder").mkdir()
    made["folder"] = root / "folder"
    images = data.load_mnist("test")[0][:4]
    np.savez(root / "good.npz", images=images, seeds=np.arange(4))
    made["good"] = root / "good.npz"
    (root / "empty.npz").write_bytes(b"")
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (root / "notes.txt").write_text("not images\n")
    np.savez(root / "two.npz", a=images, b=images)
    np.save(root / "floats.npy", np.full((2, 28, 28), np.nan, dtype=np.float32))
    np.save(root / "wrong_shape.npy", np.zeros((2, 27, 27), dtype=np.uint8))
    np.save(root / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    flipped = bytearray((root / "good.npz").read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (root / "flipped.npz").write_bytes(bytes(flipped))
    good_zip = (root / "good.npz").read_bytes()
    (root / "truncated.npz").write_bytes(good_zip[: len(good_zip) // 2])
    (root / "bad.json").write_text("{not json")
    (root / "wrong_field.json").write_text(json.dumps({"model": "gan", "no_such_field": 1}))
    files = {"empty": "empty.npz", "png": "picture.png", "txt": "notes.txt", "two": "two.npz"}
    files |= {"floats": "floats.npy", "wrong_shape": "wrong_shape.npy", "objects": "objects.npy"}
    files |= {"flipped": "flipped.npz", "truncated": "truncated.npz"}
    made |= {name: root / file for name, file in files.items()}
    return made


def _out(runs) -> Path:
    return runs["root"] / "out" / "s.npz"


def sampling(family: str, *options: str):
    """`mnistmem sample` of the fixture's run of `family` with `options`."""
    return lambda r: ["sample", r[family], *options, "--out", _out(r)]


def gan_training(*options: str):
    """`mnistmem train --model gan` with `options`, into a fresh folder."""
    return lambda r: ["train", "--model", "gan", *options, "--out", r["root"] / "t1"]


def unlearning(*options: str):
    """`mnistmem unlearn` with `options`."""
    return lambda r: ["unlearn", *options]


#: (id, argv built from the fixture paths, the word the one error line must contain)
CASES = [
    # --- mnistmem sample
    ("sample-missing-run", lambda r: ["sample", r["root"] / "nope", "--out", _out(r)], "does not exist"),
    ("sample-run-is-a-file", lambda r: ["sample", r["good"], "--out", _out(r)], "neither a checkpoint"),
    ("sample-n-0", sampling("gan", "--n", "0"), "--n"),
    ("sample-n-negative", sampling("gan", "--n", "-5"), "--n"),
    ("sample-n-huge", sampling("gan", "--n", "2000000000"), "GiB"),
    ("sample-n-text", sampling("gan", "--n", "many"), "--n"),
    ("sample-steps-0", sampling("diffusion", "--steps", "0"), "--steps"),
    ("sample-steps-negative", sampling("diffusion", "--steps", "-2"), "--steps"),
    ("sample-steps-on-gan", sampling("gan", "--steps", "5"), "diffusion"),
    ("sample-guidance-nan", sampling("diffusion", "--guidance", "nan"), "--guidance"),
    ("sample-guidance-on-gan", sampling("gan", "--guidance", "2"), "diffusion"),
    ("sample-sampler-on-gan", sampling("gan", "--sampler", "ddim"), "diffusion"),
    (
        "sample-sampler-unknown",
        sampling("diffusion", "--sampler", "euler"),
        "--sampler",
    ),
    ("sample-label-unconditional", sampling("diffusion", "--label", "3"), "label"),
    ("sample-label-on-gan", sampling("gan", "--label", "3"), "diffusion"),
    (
        "sample-regenerate-negative",
        sampling("gan", "--regenerate", "-1"),
        "never negative",
    ),
    ("sample-seed-negative", sampling("gan", "--seed", "-1"), "--seed"),
    ("sample-batch-0", sampling("gan", "--batch-size", "0"), "--batch-size"),
    ("sample-out-folder", lambda r: ["sample", r["gan"], "--out", r["folder"]], "folder"),
    ("sample-no-out", lambda r: ["sample", r["gan"]], "--out"),
    ("sample-device-unknown", sampling("gan", "--device", "tpu9"), "tpu9"),
    # --- mnistmem search
    ("search-missing", lambda r: ["search", r["root"] / "nope.npz"], "does not exist"),
    ("search-folder", lambda r: ["search", r["folder"]], "folder"),
    ("search-empty-file", lambda r: ["search", r["empty"]], "empty"),
    ("search-png", lambda r: ["search", r["png"]], "not a NumPy"),
    ("search-text", lambda r: ["search", r["txt"]], "not a NumPy"),
    ("search-two-arrays", lambda r: ["search", r["two"]], "images"),
    ("search-nan-floats", lambda r: ["search", r["floats"]], "floats.npy"),
    ("search-wrong-shape", lambda r: ["search", r["wrong_shape"]], "wrong_shape.npy"),
    ("search-pickled-objects", lambda r: ["search", r["objects"]], "objects.npy"),
    ("search-flipped-byte", lambda r: ["search", r["flipped"]], "flipped.npz"),
    ("search-truncated", lambda r: ["search", r["truncated"]], "truncated.npz"),
    ("search-k-small", lambda r: ["search", r["good"], "--k", "10"], "--k"),
    ("search-out-folder", lambda r: ["search", r["good"], "--out", r["folder"]], "--out"),
    ("search-baseline-folder", lambda r: ["search", r["good"], "--baseline", r["folder"]], "--baseline"),
    ("search-baseline-not-a-table", lambda r: ["search", r["good"], "--baseline", r["txt"], "--no-ct"], "notes.txt"),
    # --- mnistmem train
    ("train-no-model", lambda r: ["train", "--out", r["root"] / "t1"], "--model"),
    ("train-unknown-model", lambda r: ["train", "--model", "transformer", "--out", r["root"] / "t1"], "transformer"),
    ("train-steps-0", gan_training("--steps", "0"), "steps"),
    ("train-init-from-missing", gan_training("--init-from", "/nowhere/run"), "/nowhere/run"),
    (
        "train-init-from-another-family",
        lambda r: ["train", "--model", "vae", "--init-from", r["gan"], "--out", r["root"] / "t1"],
        "init_from",
    ),
    (
        "train-steps-negative",
        gan_training("--steps", "-2"),
        "steps",
    ),
    ("train-batch-0", gan_training("--batch-size", "0"), "batch"),
    ("train-lr-nan", gan_training("--lr", "nan"), "lr"),
    ("train-lr-negative", gan_training("--lr", "-1"), "lr"),
    ("train-n-0", gan_training("--n", "0"), "n"),
    ("train-n-too-many", gan_training("--n", "70000"), "70000"),
    (
        "train-exclude-text",
        gan_training("--exclude", "a,b"),
        "--exclude",
    ),
    (
        "train-exclude-range",
        gan_training("--exclude", "99999"),
        "99999",
    ),
    (
        "train-canary-glyph",
        gan_training("--canary", "nope:3"),
        "nope",
    ),
    (
        "train-canary-count",
        gan_training("--canary", "copyright:-1"),
        "copyright",
    ),
    (
        "train-canary-form",
        gan_training("--canary", "copyright"),
        "copyright",
    ),
    ("train-ema-text", gan_training("--ema", "lots"), "--ema"),
    ("train-ema-range", gan_training("--ema", "2"), "ema"),
    (
        "train-config-missing",
        lambda r: ["train", "--config", r["root"] / "none.json", "--out", r["root"] / "t1"],
        "--config",
    ),
    (
        "train-config-bad-json",
        lambda r: ["train", "--config", r["root"] / "bad.json", "--out", r["root"] / "t1"],
        "--config",
    ),
    (
        "train-config-unknown-field",
        lambda r: ["train", "--config", r["root"] / "wrong_field.json", "--out", r["root"] / "t1"],
        "no_such_field",
    ),
    (
        "train-model-kwargs-json",
        gan_training("--model-kwargs", "{bad"),
        "--model-kwargs",
    ),
    (
        "train-model-kwargs-unknown",
        lambda r: ["train", "--model", "gan", "--model-kwargs", '{"wings": 2}', "--out", r["root"] / "t1"],
        "wings",
    ),
    ("train-out-is-a-file", lambda r: ["train", "--model", "gan", "--out", r["good"]], "--out"),
    (
        "train-no-resume-existing",
        lambda r: [
            "train",
            "--model",
            "gan",
            "--model-kwargs",
            json.dumps(TINY["gan"]),
            "--n",
            "16",
            "--steps",
            "1",
            "--batch-size",
            "8",
            "--no-resume",
            "--out",
            r["gan"],
        ],
        "resume",
    ),
    (
        "train-different-run-in-folder",
        lambda r: ["train", "--model", "vae", "--steps", "1", "--out", r["gan"]],
        "different run",
    ),
    (
        "train-checkpoint-every-0",
        gan_training("--checkpoint-every", "0"),
        "checkpoint",
    ),
    (
        "train-checkpoint-minutes-nan",
        gan_training("--checkpoint-minutes", "nan"),
        "checkpoint",
    ),
    (
        "train-keep-every-0",
        gan_training("--keep-every", "0"),
        "keep",
    ),
    # --- mnistmem unlearn
    ("unlearn-shards-0", unlearning("--method", "sisa", "--forget", "3", "--shards", "0"), "shards"),
    ("unlearn-slices-0", unlearning("--method", "sisa", "--forget", "3", "--slices", "0"), "slices"),
    ("unlearn-forget-text", unlearning("--method", "retrain", "--forget", "abc"), "--forget"),
    ("unlearn-forget-range", unlearning("--method", "retrain", "--forget", "99999"), "99999"),
    ("unlearn-n-0", unlearning("--method", "retrain", "--forget", "3", "--n", "0"), "n"),
    ("unlearn-samples-0", unlearning("--method", "retrain", "--forget", "3", "--samples", "0"), "samples"),
    ("unlearn-steps-0", unlearning("--method", "retrain", "--forget", "3", "--steps", "0"), "steps"),
    (
        "unlearn-channels-text",
        unlearning("--method", "retrain", "--forget", "3", "--channels", "a,b"),
        "--channels",
    ),
    (
        "unlearn-canary-bad",
        unlearning("--method", "retrain", "--forget", "canary", "--canary", "nope:2"),
        "nope",
    ),
    (
        "unlearn-out-folder",
        lambda r: ["unlearn", "--method", "retrain", "--forget", "3", "--out", r["folder"]],
        "--out",
    ),
    ("unlearn-method-unknown", unlearning("--method", "forgetful", "--forget", "3"), "--method"),
    # --- mnistmem reproduce
    ("reproduce-unknown-experiment", lambda r: ["reproduce", "--only", "nothing"], "nothing"),
    ("reproduce-scale-unknown", lambda r: ["reproduce", "--scale", "huge"], "--scale"),
    ("reproduce-jobs-0", lambda r: ["reproduce", "--jobs", "0"], "--jobs"),
    ("reproduce-minutes-negative", lambda r: ["reproduce", "--minutes", "-1"], "--minutes"),
    ("reproduce-minutes-nan", lambda r: ["reproduce", "--minutes", "nan"], "--minutes"),
    ("reproduce-stages-without-only", lambda r: ["reproduce", "--stages", "train_gan"], "--only"),
    ("reproduce-needs-upstream", lambda r: ["reproduce", "--scale", "smoke", "--only", "onset"], "calibration"),
    (
        "reproduce-rerun-no-match",
        lambda r: ["reproduce", "--scale", "smoke", "--only", "calibration", "--rerun", "zzz*"],
        "zzz",
    ),
    # --- mnistmem data, trip, book
    ("data-unknown-action", lambda r: ["data", "explode"], "explode"),
    ("trip-unpack-missing", lambda r: ["trip", "unpack", r["root"] / "nope"], "nope"),
    ("trip-pack-nothing", lambda r: ["trip", "pack", r["root"] / "trip.tar"], "nothing to pack"),
    ("unknown-command", lambda r: ["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_misuse_is_refused_in_one_clear_line(case, runs, tmp_path, monkeypatch, capsys):
    name, argv, expect = case
    monkeypatch.setenv("MNISTMEM_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    outcome, code, stderr = run_cli(argv(runs), capsys)
    verdict = classify(outcome, code, stderr, expect)
    assert verdict == "clear", f"{name}: {verdict} (exit {code}): {error_lines(stderr)}"


# ------------------------------------------------------------------------------ environment and data files
@pytest.mark.parametrize(
    "variable, value, expect",
    [
        ("MNISTMEM_THREADS", "abc", "MNISTMEM_THREADS"),
        ("MNISTMEM_THREADS", "0", "MNISTMEM_THREADS"),
        ("MNISTMEM_DEVICE", "cuda:7", "cuda"),
    ],
)
def test_bad_environment_is_one_line(variable, value, expect, runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(variable, value)
    outcome, code, stderr = run_cli(["sample", runs["gan"], "--n", "2", "--out", tmp_path / "s.npz"], capsys)
    assert classify(outcome, code, stderr, expect) == "clear", stderr


def _alter(path: Path, how: str) -> None:
    content = path.read_bytes()
    if how == "flip":
        middle = bytearray(content)
        middle[len(middle) // 2] ^= 0x01
        path.write_bytes(bytes(middle))
    elif how == "truncate":
        path.write_bytes(content[: len(content) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "delete":
        path.unlink()


@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "delete"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_a_damaged_mnist_cache_is_one_line_naming_it(split, how, runs, tmp_path, monkeypatch, capsys):
    """Every command that reads MNIST names the damaged cache file and the fix; none shows a traceback."""
    import shutil

    home = tmp_path / "data"
    shutil.copytree(Path(data.cache_path("train")).parent, home / "mnist")
    monkeypatch.setenv("MNISTMEM_DATA", str(home))
    monkeypatch.setattr(data, "_memo", {})
    target = home / "mnist" / f"{split}.npz"
    if how == "delete":  # a deleted cache is rebuilt from the installed package: that is the right answer
        _alter(target, how)
        assert run_cli(["data", "info"], capsys)[1] == 0 and target.exists()
        return
    _alter(target, how)
    train_run = ["train", "--model", "gan", "--model-kwargs", json.dumps(TINY["gan"]), "--steps", "1"]
    for argv in (
        ["data", "info"],
        ["search", runs["good"], "--no-ct"],
        *([[*train_run, "--out", tmp_path / "t"]] if split == "train" else []),  # training reads only its split
    ):
        monkeypatch.setattr(data, "_memo", {})
        outcome, code, stderr = run_cli(argv, capsys)
        assert classify(outcome, code, stderr, f"{split}.npz") == "clear", (argv[0], stderr)


# -------------------------------------------------------------------------------- altered model checkpoints
def _fresh_run(runs, tmp_path, family="gan") -> Path:
    import shutil

    copy = tmp_path / family
    shutil.copytree(runs[family], copy)
    return copy


def _latest(run: Path) -> Path:
    from mnistmem.checkpoints import list_checkpoints

    return list_checkpoints(run)[-1][1]


@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "delete", "replace", "nan", "zeros"])
@pytest.mark.parametrize("file", ["model.safetensors", "ema.safetensors"])
def test_an_altered_checkpoint_is_refused_when_sampled(file, how, runs, tmp_path, capsys):
    """A flipped byte, a truncated, emptied or deleted file, another run's weights, NaN or zeroed weights:
    `mnistmem sample` refuses each in one line naming the file; it never samples silently from something else
    (a deleted EMA once fell back to the training weights while the output said `"ema": true`)."""
    import torch
    from safetensors.torch import load_file, save_file

    run = _fresh_run(runs, tmp_path, "diffusion")  # a family that keeps an EMA
    target = _latest(run) / file
    if how in ("nan", "zeros", "replace"):
        tensors = load_file(str(target))
        if how == "replace":
            generator = torch.Generator().manual_seed(1)
            tensors = {k: torch.randn(v.shape, generator=generator).to(v.dtype) for k, v in tensors.items()}
        else:
            fill = float("nan") if how == "nan" else 0.0
            tensors = {k: torch.full_like(v, fill) if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(tensors, str(target))
    else:
        _alter(target, how)
    outcome, code, stderr = run_cli(["sample", run, "--n", "2", "--out", tmp_path / "s.npz"], capsys)
    assert classify(outcome, code, stderr, file) == "clear", stderr
    assert not (tmp_path / "s.npz").exists()


def test_nan_weights_with_matching_hashes_are_still_refused(runs, tmp_path, capsys):
    """Hashes catch an accident; a checkpoint whose weights are not finite is refused even when its hashes were
    rewritten to match."""
    import torch
    from safetensors.torch import load_file, save_file

    from mnistmem.checkpoints import FILES, STATE
    from mnistmem.integrity import sha256_file

    checkpoint = _latest(_fresh_run(runs, tmp_path, "diffusion"))
    for file in ("model.safetensors", "ema.safetensors"):
        tensors = {
            k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
            for k, v in load_file(str(checkpoint / file)).items()
        }
        save_file(tensors, str(checkpoint / file))
    state = json.loads((checkpoint / STATE).read_text())
    state[FILES] = {name: sha256_file(checkpoint / name) for name in state[FILES]}
    (checkpoint / STATE).write_text(json.dumps(state))
    outcome, code, stderr = run_cli(["sample", checkpoint, "--n", "2", "--out", tmp_path / "s.npz"], capsys)
    assert classify(outcome, code, stderr, "non-finite") == "clear", stderr


def test_a_checkpoint_without_hashes_is_refused_outside_its_training_run(runs, tmp_path, capsys):
    """A checkpoint from before hashes were recorded is unverified: refused by `sample`; the trainer records
    the hashes of its own older checkpoints when it resumes, and sampling then works."""
    from mnistmem.checkpoints import FILES, STATE

    run = _fresh_run(runs, tmp_path)
    state_file = _latest(run) / STATE
    state = json.loads(state_file.read_text())
    del state[FILES]
    state_file.write_text(json.dumps(state))
    outcome, code, stderr = run_cli(["sample", run, "--n", "2", "--out", tmp_path / "s.npz"], capsys)
    assert classify(outcome, code, stderr, "no content hashes") == "clear", stderr
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    train(config, run, progress=False)
    assert FILES in json.loads(state_file.read_text())
    assert run_cli(["sample", run, "--n", "2", "--out", tmp_path / "s.npz"], capsys)[1] == 0


def test_a_malformed_state_file_is_one_line(runs, tmp_path, capsys):
    from mnistmem.checkpoints import STATE

    run = _fresh_run(runs, tmp_path)
    for content in ("{broken", json.dumps({"family": "gan"}), json.dumps([1, 2])):
        (_latest(run) / STATE).write_text(content)
        outcome, code, stderr = run_cli(["sample", run, "--n", "2", "--out", tmp_path / "s.npz"], capsys)
        assert classify(outcome, code, stderr, STATE) == "clear", (content, stderr)
