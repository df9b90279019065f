"""Device choice and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from mnistmem import cli, data, devices


def test_cpu_is_always_available_and_picked_when_asked(capsys):
    device = devices.pick_device("cpu", verbose=True)
    assert device.type == "cpu"
    assert "using cpu" in capsys.readouterr().out


def test_environment_variable_forces_the_device(monkeypatch):
    monkeypatch.setenv(devices.ENV_VAR, "cpu")
    assert devices.pick_device().type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device_is_an_error_not_a_silent_fallback(monkeypatch):
    monkeypatch.setenv(devices.ENV_VAR, "cuda")
    with pytest.raises(devices.DeviceError, match="not available here"):
        devices.pick_device()


def test_cpu_threads_use_every_available_core():
    cores = devices.configure_cpu_threads()
    assert torch.get_num_threads() == cores >= 1


def test_thread_cap_from_the_environment(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(devices.THREADS_VAR, "1")
        assert devices.configure_cpu_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv(devices.THREADS_VAR, "two")
        with pytest.raises(devices.DeviceError, match="MNISTMEM_THREADS"):
            devices.configure_cpu_threads()
    finally:
        torch.set_num_threads(before)


def test_cli_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "mnistmem", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "data" in result.stdout and "book" in result.stdout


def test_cli_without_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2


def test_cli_data_info_reports_hashes_and_counts(capsys):
    assert cli.main(["data", "info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    train = report["splits"]["train"]
    assert train["images_sha256"] == data.PINNED_ARRAY_SHA256["train"]["images"]
    assert train["per_digit_counts"][1] == 6742
    assert report["splits"]["test"]["verified"] is True


def test_cli_data_info_text(capsys):
    assert cli.main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert data.PINNED_ARRAY_SHA256["test"]["labels"] in out and "1:6742" in out


def test_reproduce_jobs_runs_experiments_in_child_processes(tmp_path, smoke_results):
    """`--jobs 2` starts each experiment in its own process (one thread each on two cores) and reports
    every wall time; a child that fails makes the whole command fail and names the experiment."""
    import shutil

    results_root = tmp_path / "results"
    shutil.copytree(smoke_results / "smoke", results_root / "smoke")
    command = [sys.executable, "-m", "mnistmem", "reproduce", "--scale", "smoke", "--jobs", "2"]
    env = {**__import__("os").environ, "MNISTMEM_RESULTS": str(results_root)}
    done = subprocess.run([*command, "--only", "randomness", "storage"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "starting randomness" in done.stdout and "starting storage" in done.stdout
    summary = done.stdout.split("Wall time")[-1]  # the parent prints last
    assert "randomness" in summary and "storage" in summary

    shutil.rmtree(results_root / "smoke" / "main")  # what randomness reads is gone
    broken = subprocess.run([*command, "--only", "randomness"], env=env, capture_output=True, text=True)
    assert broken.returncode == 1 and "randomness failed" in broken.stdout


def test_project_errors_print_one_line_and_exit_2_and_debug_shows_the_traceback(monkeypatch, capsys):
    from mnistmem import cli
    from mnistmem.commands import data as data_command
    from mnistmem.training import ConfigError

    def fails(args):
        raise ConfigError("steps must be a positive integer, got -2\n(Fix: pass --steps 1 or more)")

    monkeypatch.setattr(data_command, "run", fails)
    assert cli.main(["data", "info"]) == 2
    err = capsys.readouterr().err
    assert err == "mnistmem data: steps must be a positive integer, got -2 (Fix: pass --steps 1 or more)\n"
    with pytest.raises(ConfigError):
        cli.main(["--debug", "data", "info"])
    monkeypatch.setattr(data_command, "run", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a bug is not dressed up as a usage error
        cli.main(["data", "info"])


def test_sample_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    """One line, exit 2, no traceback, for each misuse: checked before the checkpoint is even opened."""
    from mnistmem.cli import main

    (tmp_path / "folder").mkdir()
    out = str(tmp_path / "s.npz")
    missing = str(tmp_path / "no-model")
    cases = [
        (["--n", "0", "--out", out], "--n must be at least 1"),
        (["--n", "-5", "--out", out], "--n must be at least 1"),
        (["--batch-size", "0", "--out", out], "--batch-size"),
        (["--steps", "0", "--out", out], "--steps must be at least 1"),
        (["--steps", "-2", "--out", out], "--steps must be at least 1"),
        (["--guidance", "nan", "--out", out], "--guidance must be a finite number"),
        (["--regenerate", "-1", "--out", out], "never negative"),
        (["--seed", "-1", "--out", out], "--seed must be in"),
        (["--out", str(tmp_path / "folder")], "is a folder"),
        (["--n", "2000000000", "--out", out], "GiB"),
    ]
    for extra, message in cases:
        assert main(["sample", missing, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (extra, err)


def test_sample_refuses_diffusion_options_for_a_gan(tmp_path, capsys):
    from mnistmem.cli import main
    from mnistmem.dataspec import DataSpec
    from mnistmem.training import TrainConfig, train

    from .conftest import TINY

    run = tmp_path / "gan"
    train(
        TrainConfig(model="gan", model_kwargs=TINY["gan"], data=DataSpec(n=16), steps=1, batch_size=8),
        run,
        progress=False,
    )
    for extra in (["--steps", "10"], ["--guidance", "2"], ["--label", "3"], ["--sampler", "ddim"]):
        assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.npz"), *extra]) == 2
        assert "diffusion models only" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_sample_refuses_a_device_this_machine_lacks_in_one_line(how, tmp_path, monkeypatch, capsys):
    """`mnistmem sample` honours MNISTMEM_DEVICE as `train` does: a missing device is one line and exit 2, never
    a silent run on the CPU."""
    from mnistmem.dataspec import DataSpec
    from mnistmem.training import TrainConfig, train

    if "cuda" in devices.available_devices():
        pytest.skip("this machine has CUDA")
    run = tmp_path / "run"
    train(
        TrainConfig(model="vae", model_kwargs=TINY_VAE, data=DataSpec(n=16), steps=1, batch_size=8), run, progress=False
    )
    args = ["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.npz"), "--no-progress"]
    if how == "argument":
        args += ["--device", "cuda"]
    else:
        monkeypatch.setenv(devices.ENV_VAR, "cuda")
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0] and "not available" in err[0]
    assert not (tmp_path / "s.npz").exists()


TINY_VAE = {"latent": 4, "width": 8, "hidden": 16}
