"""Every committed artefact is verified by content hash: altered, truncated, emptied, replaced, deleted or
extra files and hand-edited records are refused with one line naming the file and the fix."""

from __future__ import annotations

import json
import shutil

import pytest

from mnistmem import results
from mnistmem.experiments.runner import run_experiment

from .test_runner import make_experiment


@pytest.fixture
def toy(tmp_path):
    run_experiment(make_experiment([]), "smoke", root=tmp_path, log=lambda _: None)
    result = results.load("toy", "smoke", root=tmp_path)
    return tmp_path, result


def alterations():
    yield "flipped", lambda data: data[:10] + bytes([data[10] ^ 1]) + data[11:]
    yield "truncated", lambda data: data[: len(data) // 2]
    yield "emptied", lambda data: b""
    yield "replaced", lambda data: b"PK\x03\x04 another file"


@pytest.mark.parametrize(("how", "alter"), list(alterations()))
def test_an_altered_result_file_is_refused(toy, how, alter):
    root, result = toy
    path = result.dir / result.stage("square")["folder"] / "squares.npz"
    path.write_bytes(alter(path.read_bytes()))
    fresh = results.load("toy", "smoke", root=root)
    with pytest.raises(results.ResultError) as caught:
        fresh.arrays("square", "squares.npz")
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and "mnistmem reproduce" in message
    assert "refused" in message or "missing" in message


def test_a_deleted_or_extra_file_and_a_changed_record_are_refused(toy):
    root, result = toy
    folder = result.dir / result.stage("produce")["folder"]
    (folder / "unexpected.bin").write_bytes(b"x")
    with pytest.raises(results.ResultError, match=r"unexpected\.bin is not among the files its stage recorded"):
        results.load("toy", "smoke", root=root).path("produce", ".")
    (folder / "unexpected.bin").unlink()
    (folder / "numbers.npz").unlink()
    with pytest.raises(results.ResultError, match="missing"):
        results.load("toy", "smoke", root=root).path("produce", "numbers.npz")
    # a valid-JSON edit of a number the book would print
    manifest_path = result.dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"]["square"]["summary"]["total"] = 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(results.ResultError, match="was changed"):
        results.load("toy", "smoke", root=root)
    del manifest["stages"]["square"]["record_sha256"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(results.ResultError, match="unverified"):
        results.load("toy", "smoke", root=root)


def test_a_tampered_stage_record_stops_a_rerun(toy):
    root, result = toy
    stage_file = result.dir / result.stage("produce")["folder"] / "stage.json"
    record = json.loads(stage_file.read_text())
    record["summary"]["n"] = 99
    stage_file.write_text(json.dumps(record))
    from mnistmem.integrity import IntegrityError

    with pytest.raises(IntegrityError, match="was changed"):
        run_experiment(make_experiment([]), "smoke", root=root, log=lambda _: None)


@pytest.mark.parametrize("name", ["classifier", "descriptor"])
def test_a_judging_network_loads_only_with_its_pinned_hash(name, tmp_path, monkeypatch, repo):
    """The classifier and the copy descriptor define measurements in the book: one flipped bit is refused."""
    import importlib

    module = importlib.import_module(f"mnistmem.models.{name}")
    assert module.load_pretrained().config["weights_sha256"] == module.PINNED_WEIGHTS_SHA256
    copy = tmp_path / "models" / name
    shutil.copytree(repo / "data" / "models" / name, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 1
    weights.write_bytes(bytes(data))
    monkeypatch.setenv("MNISTMEM_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=r"pinned .* refused"):
        module.load_pretrained()
