"""Trips to a lent GPU machine, rehearsed on the CPU: the carry fits, archives are verified, and two
time-boxed steps with a pack and an unpack between them end where one uninterrupted run ends."""

from __future__ import annotations

import argparse
import io
import json
import tarfile

import numpy as np
import pytest

from mnistmem import trip
from mnistmem.cli import main


def toy_results(root, scale="smoke"):
    stage = root / scale / "main" / "train_gan-0123456789ab"
    (stage / "scratch" / "run").mkdir(parents=True)
    (stage / "scratch" / "run" / "weights.bin").write_bytes(bytes(range(256)) * 100)
    (root / scale / "main" / "manifest.json").write_text('{"schema": 1}')
    return root


def test_pack_and_unpack_round_trip_and_refuse_what_cannot_be_trusted(tmp_path, capsys, monkeypatch):
    source = toy_results(tmp_path / "there")
    written = trip.pack(source, "smoke", tmp_path / "out").written
    assert [p.name for p in written] == ["results-smoke-0.tar.gz", "trip.json"] and len(written) <= trip.MAX_ARCHIVES
    assert trip.unpack(tmp_path / "out", tmp_path / "here", "smoke").files == 2
    back = tmp_path / "here" / "smoke" / "main" / "train_gan-0123456789ab" / "scratch" / "run" / "weights.bin"
    assert back.read_bytes() == bytes(range(256)) * 100
    monkeypatch.setenv("MNISTMEM_RESULTS", str(tmp_path / "here2"))
    with pytest.raises(trip.TripError, match="holds 'smoke' results, not 'gpu'"):
        trip.unpack(tmp_path / "out", tmp_path / "here", "gpu")
    # a flipped byte in an archive: refused before anything is extracted, one line, exit 2
    archive = tmp_path / "out" / "results-smoke-0.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    assert main(["trip", "unpack", str(tmp_path / "out"), "--scale", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SHA-256" in err and "refused" in err and "Traceback" not in err
    assert not (tmp_path / "here2").exists()
    archive.unlink()
    with pytest.raises(trip.TripError, match="is missing"):
        trip.unpack(tmp_path / "out", tmp_path / "here", "smoke")
    (tmp_path / "out" / "trip.json").unlink()
    with pytest.raises(trip.TripError, match="nothing came back"):
        trip.unpack(tmp_path / "out", tmp_path / "here", "smoke")


def test_an_archive_cannot_write_outside_the_results_folder(tmp_path):
    out = tmp_path / "evil"
    out.mkdir()
    with tarfile.open(out / "results-smoke-0.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    entry = {"archive": "results-smoke-0.tar.gz", "sha256": trip.sha256_file(out / "results-smoke-0.tar.gz")}
    (out / "trip.json").write_text(json.dumps({"scale": "smoke", "archives": [{**entry, "files": []}]}))
    with pytest.raises(trip.TripError, match="outside a results folder"):
        trip.unpack(out, tmp_path / "results", "smoke")
    assert not (tmp_path / "outside.txt").exists()


def test_pack_refuses_finished_stages_a_trip_cannot_bring_back_and_leaves_a_paused_state_behind(
    tmp_path, monkeypatch, capsys
):
    root = toy_results(tmp_path / "r")
    monkeypatch.setattr(trip, "MAX_ARCHIVE_BYTES", 10_000)
    # the paused training's state (25,600 bytes) cannot travel: the finished stages come back without it
    packed = trip.pack(root, "smoke", tmp_path / "out")
    assert packed.left_behind == {"main/train_gan-0123456789ab/scratch": 25_600}
    assert json.loads((tmp_path / "out" / "trip.json").read_text())["left_behind"] == packed.left_behind
    unpacked = trip.unpack(tmp_path / "out", tmp_path / "home", "smoke")
    assert unpacked.files == 1 and unpacked.left_behind == packed.left_behind  # the manifest came back, no state
    assert not (tmp_path / "home" / "smoke" / "main" / "train_gan-0123456789ab").exists()
    monkeypatch.setenv("MNISTMEM_RESULTS", str(tmp_path / "home2"))  # unpacking says what stayed behind
    assert main(["trip", "unpack", str(tmp_path / "out"), "--scale", "smoke"]) == 0
    assert "left behind on the GPU machine: main/train_gan-0123456789ab/scratch" in capsys.readouterr().out
    # a finished stage too large for any trip: refused, naming the file and the fix
    (root / "smoke" / "main" / "table.npz").write_bytes(bytes(20_000))
    with pytest.raises(trip.TripError, match=r"largest file .*table\.npz.*Fix: plan fewer stages"):
        trip.pack(root, "smoke", tmp_path / "out2")
    monkeypatch.setattr(trip, "MAX_ARCHIVE_BYTES", 16 * 2**20)
    monkeypatch.setattr(trip, "MAX_RETURN_BYTES", 2**20 + 10_000)  # all archives together: 64 MiB in the tool
    with pytest.raises(trip.TripError, match="MiB in all"):
        trip.pack(root, "smoke", tmp_path / "out3")
    with pytest.raises(trip.TripError, match="does not exist"):
        trip.pack(root, "gpu", tmp_path / "out")


def test_pack_brings_back_only_what_the_step_changed(tmp_path):
    root = toy_results(tmp_path / "r")
    source = root / "smoke"
    carried = {p.relative_to(source).as_posix(): trip.sha256_file(p) for p in source.rglob("*") if p.is_file()}
    (source / "main" / "manifest.json").write_text('{"schema": 1, "stages": {}}')  # changed by the step
    (source / "main" / "new-stage.json").write_text("{}")  # made by the step
    packed = trip.pack(root, "smoke", tmp_path / "out", carried)
    archives = json.loads((tmp_path / "out" / "trip.json").read_text())["archives"]
    files = [name for entry in archives for name in entry["files"]]
    assert sorted(files) == ["main/manifest.json", "main/new-stage.json"] and packed.unchanged == 1


def test_prepare_lists_the_results_it_carries(tmp_path, monkeypatch):
    """`prepare` records the SHA-256 of every file of data/results/gpu it carries, which `pack` reads back."""
    repo = tmp_path / "repo"
    toy_results(repo / "data" / "results", scale="gpu")
    (repo / "data" / "mnist").mkdir(parents=True)
    (repo / "data" / "mnist" / "train.npz").write_bytes(b"digits")
    monkeypatch.setattr(trip, "tracked_bytes", lambda _: 0)
    prepared = trip.prepare(repo, wheels=False)
    assert "data/results/gpu" in prepared.carry
    hashes = trip.carried_hashes(repo, "gpu")
    assert hashes["main/manifest.json"] == trip.sha256_file(repo / "data/results/gpu/main/manifest.json")
    assert len(hashes) == 2
    # too much brought back to carry out again: refused in one line that names the heaviest stage
    monkeypatch.setattr(trip, "MAX_TREE_BYTES", 20_000)
    with pytest.raises(trip.TripError, match=r"largest carried stages: data/results/gpu/main/train_gan-0123456789ab"):
        trip.prepare(repo, wheels=False)


def test_the_trip_fits_the_device(repo):
    """Tracked tree plus the MNIST cache and the bootstrap (wheels not fetched here: CI needs no network for
    this; the three wheels add about 7.7 MB, which `mnistmem trip prepare` counts)."""
    prepared = trip.prepare(repo, wheels=False)
    assert ".trip" in prepared.carry and "data/mnist" in prepared.carry
    # the wheels are counted once: as carried when an earlier `trip prepare` fetched them, else as a margin
    fetched = any((repo / ".trip" / "wheels").glob("*.whl"))
    assert prepared.total_bytes + (0 if fetched else 8 * 2**20) <= trip.MAX_TREE_BYTES, prepared
    command = trip.step_command()
    assert "--minutes 6" in command and command.endswith('trip pack "$OUT" --scale gpu')
    # the measurement and the step are bounded, so pack runs within the device's 10 minutes
    assert "timeout -k 10 90 python3 bench/gpu_plan.py" in command and "timeout -k 20 420 python3 -m" in command
    with pytest.raises(trip.TripError, match="10 minutes"):
        trip.step_command(minutes=7)


def _reproduce(root, monkeypatch, *extra: str) -> int:
    from mnistmem.commands import reproduce

    monkeypatch.setenv("MNISTMEM_RESULTS", str(root))
    parser = argparse.ArgumentParser()
    reproduce.add_arguments(parser)
    return reproduce.run(
        parser.parse_args(["--scale", "smoke", "--only", "calibration", "training", "main", "--no-progress", *extra])
    )


@pytest.mark.slow
def test_two_time_boxed_loans_with_pack_and_unpack_end_like_one_run(tmp_path, monkeypatch, smoke_results):
    """Loan 1 runs out of time in a training of the `training` experiment (exit 3) and packs; the results travel
    back and are unpacked into a fresh folder, where loan 2 finishes. Samples and scores equal those of one
    uninterrupted run. And where the paused training's state is too large to come back, loan 2 starts that
    training again and still ends where one run ends."""
    from mnistmem import results

    assert _reproduce(tmp_path / "loan1", monkeypatch, "--minutes", "0.0001") == 3
    assert not trip.pack(tmp_path / "loan1", "smoke", tmp_path / "back1").left_behind
    trip.unpack(tmp_path / "back1", tmp_path / "loan2", "smoke")
    with monkeypatch.context() as small:  # a trip too small for the checkpoint, large enough for the rest
        small.setattr(trip, "MAX_ARCHIVE_BYTES", 1_000_000)
        assert trip.pack(tmp_path / "loan1", "smoke", tmp_path / "back1b").left_behind
    trip.unpack(tmp_path / "back1b", tmp_path / "loan2b", "smoke")
    b = results.load("main", "smoke", root=smoke_results)  # the session's uninterrupted smoke run
    for loan in ("loan2", "loan2b"):
        assert _reproduce(tmp_path / loan, monkeypatch) == 0
        a = results.load("main", "smoke", root=tmp_path / loan)
        assert a.manifest["stages"].keys() == b.manifest["stages"].keys()
        for name in a.manifest["stages"]:
            assert a.stage(name)["folder"] == b.stage(name)["folder"]  # same configurations
            if name.startswith("sample_"):
                images = a.arrays(name, "samples.npz")["images"]
                assert np.array_equal(images, b.arrays(name, "samples.npz")["images"]), (loan, name)
            if name.startswith("score_"):
                sa, sb = a.arrays(name, "table.npz"), b.arrays(name, "table.npz")
                assert all(np.array_equal(sa[k], sb[k]) for k in sa if k.startswith("score__")), (loan, name)


@pytest.mark.slow
def test_the_measurement_that_opens_a_trip_runs_and_records_the_plans_sizes(tmp_path, repo):
    """`bench/gpu_plan.py`, the first minute of every loan, at toy counts on the CPU: it writes one record with
    the device, each family's training rate, the minutes its planned training would take and the size of its
    paused state, and the exact search against the cdist baseline."""
    import os
    import subprocess
    import sys

    command = [sys.executable, str(repo / "bench" / "gpu_plan.py"), "--out", str(tmp_path)]
    command += ["--steps", "1", "--queries", "100", "--samples", "4", "--families", "vae"]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = tmp_path.glob("throughput-*.json")
    record = json.loads(path.read_text())
    (vae,) = record["families"]
    assert vae["steps_planned"] == 40_000 and vae["train_minutes_planned"] > 0
    assert 15 < vae["paused_state_mib"] < 25  # 1.69 M parameters: weights and Adam's two moments in float32
    assert record["search"]["exact_pairs_per_s"] > 0 and record["search"]["cdist_topk_pairs_per_s"] > 0
