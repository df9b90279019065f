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
    written = trip.pack(source, "smoke", tmp_path / "out")
    assert [p.name for p in written] == ["results-smoke-0.tar.gz", "trip.json"] and len(written) <= trip.MAX_ARCHIVES
    assert trip.unpack(tmp_path / "out", tmp_path / "here", "smoke") == 2
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


def test_pack_refuses_what_a_trip_cannot_bring_back(tmp_path, monkeypatch):
    root = toy_results(tmp_path / "r")
    monkeypatch.setattr(trip, "MAX_ARCHIVE_BYTES", 10_000)
    with pytest.raises(trip.TripError, match="at most 16 MiB"):
        trip.pack(root, "smoke", tmp_path / "out")
    with pytest.raises(trip.TripError, match="does not exist"):
        trip.pack(root, "gpu", tmp_path / "out")


def test_the_trip_fits_the_device(repo):
    """Tracked tree plus the MNIST cache and the bootstrap (wheels not fetched here: CI needs no network for
    this; the three wheels add about 7.7 MB, which `mnistmem trip prepare` counts)."""
    prepared = trip.prepare(repo, wheels=False)
    assert ".trip" in prepared.carry and "data/mnist" in prepared.carry
    # the wheels are counted once: as carried when an earlier `trip prepare` fetched them, else as a margin
    fetched = any((repo / ".trip" / "wheels").glob("*.whl"))
    assert prepared.total_bytes + (0 if fetched else 8 * 2**20) <= trip.MAX_TREE_BYTES, prepared
    assert "--minutes 7" in trip.step_command() and 'trip pack "$OUT"' in trip.step_command()


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
    uninterrupted run."""
    from mnistmem import results

    assert _reproduce(tmp_path / "loan1", monkeypatch, "--minutes", "0.0001") == 3
    trip.pack(tmp_path / "loan1", "smoke", tmp_path / "back1")
    trip.unpack(tmp_path / "back1", tmp_path / "loan2", "smoke")
    assert _reproduce(tmp_path / "loan2", monkeypatch) == 0
    a = results.load("main", "smoke", root=tmp_path / "loan2")
    b = results.load("main", "smoke", root=smoke_results)  # the session's uninterrupted smoke run
    assert a.manifest["stages"].keys() == b.manifest["stages"].keys()
    for name in a.manifest["stages"]:
        assert a.stage(name)["folder"] == b.stage(name)["folder"]  # same configurations
        if name.startswith("sample_"):
            assert np.array_equal(a.arrays(name, "samples.npz")["images"], b.arrays(name, "samples.npz")["images"])
        if name.startswith("score_"):
            sa, sb = a.arrays(name, "table.npz"), b.arrays(name, "table.npz")
            assert all(np.array_equal(sa[k], sb[k]) for k in sa if k.startswith("score__"))
