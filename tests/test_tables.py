"""The result-table file format: round trip, schema version, corrupt files, atomic writes, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistmem import tables
from mnistmem.cli import main
from mnistmem.data import load_mnist
from mnistmem.tables import SampleTable, TableFormatError, load_table, save_table


def make_table(n: int = 5) -> SampleTable:
    rng = np.random.default_rng(0)
    d = np.sort(rng.random((n, 3)), 1)
    return SampleTable(
        sample_id=np.arange(n),
        seed=np.arange(n) * 7,
        nn_index=rng.integers(0, 60000, (n, 3)),
        nn_distance=d,
        scores={"l2": d[:, 0]},
        flags={"l2": d[:, 0] < 0.5},
        thresholds={"l2": 0.5},
        extra={"feature_nn_index": np.arange(n)},
        meta={"name": "x", "c_t": {"c_t": -1.5}},
    )


def test_round_trip(tmp_path):
    table = make_table()
    path = save_table(table, tmp_path / "sub" / "t.npz")
    loaded = load_table(path)
    for field in ("sample_id", "seed", "nn_index", "nn_distance"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(table, field))
    np.testing.assert_array_equal(loaded.scores["l2"], table.scores["l2"])
    np.testing.assert_array_equal(loaded.flags["l2"], table.flags["l2"])
    np.testing.assert_array_equal(loaded.extra["feature_nn_index"], np.arange(5))
    assert loaded.thresholds == {"l2": 0.5} and loaded.meta["c_t"]["c_t"] == -1.5
    assert loaded.meta["schema_version"] == tables.SCHEMA_VERSION
    assert [p.name for p in path.parent.iterdir()] == ["t.npz"]  # no temporary file left behind


def test_search_distances_are_stored_compactly_and_read_back_bit_for_bit(tmp_path):
    """Distances from the exact search are sqrt(integer)/255: stored as uint32 squared bytes, indices as uint16,
    read back as the same float64 and int64 arrays; anything else falls back to float64 / int64."""
    from mnistmem.neighbors import knn

    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    d, i = knn(test[:40], train[:5000], k=12)
    table = SampleTable(np.arange(40), np.arange(40), i, d, {"l2": d[:, 0]}, {"l2": d[:, 0] < 1}, {"l2": 1.0})
    path = save_table(table, tmp_path / "compact.npz")
    with np.load(path) as raw:
        assert raw["nn_d2_u32"].dtype == np.uint32 and raw["nn_index_u16"].dtype == np.uint16
        assert "nn_distance" not in raw.files and "nn_index" not in raw.files
    loaded = load_table(path)
    assert loaded.nn_distance.dtype == np.float64 and loaded.nn_distance.tobytes() == d.tobytes()
    assert loaded.nn_index.dtype == np.int64 and np.array_equal(loaded.nn_index, i)
    odd = make_table()  # random floats and indices up to 60,000: not squared-byte distances
    odd.nn_index[0, 0] = 70_000
    with np.load(save_table(odd, tmp_path / "odd.npz")) as raw:
        assert raw["nn_distance"].dtype == np.float64 and raw["nn_index"].dtype == np.int64
    assert load_table(tmp_path / "odd.npz").nn_distance.tobytes() == odd.nn_distance.tobytes()


def test_first_neighbours_keep_scores_and_record_the_search(tmp_path):
    table = make_table()
    kept = load_table(save_table(table.first_neighbours(2), tmp_path / "t.npz"))
    assert kept.k == 2 and np.array_equal(kept.nn_index, table.nn_index[:, :2])
    assert np.array_equal(kept.scores["l2"], table.scores["l2"]) and kept.meta["neighbours_searched"] == 3


def test_version_1_tables_are_still_read(tmp_path):
    table = make_table()
    path = save_table(table, tmp_path / "v2.npz")
    with np.load(path) as raw:
        arrays = {key: raw[key] for key in raw.files}
    meta = json.loads(bytes(arrays.pop("meta_json")).decode())
    meta["schema_version"] = 1
    arrays["nn_index"], arrays["nn_distance"] = table.nn_index.astype(np.int64), table.nn_distance
    arrays.pop("nn_index_u16", None), arrays.pop("nn_d2_u32", None)
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays)
    old = load_table(tmp_path / "v1.npz")
    assert np.array_equal(old.nn_index, table.nn_index) and np.array_equal(old.nn_distance, table.nn_distance)


def test_other_schema_version_is_refused(tmp_path):
    path = save_table(make_table(), tmp_path / "t.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(bytes(arrays["meta_json"]).decode())
    meta["schema_version"] = 999
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(TableFormatError, match="version 999"):
        load_table(path)


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04garbage"])
def test_corrupt_file_gives_clear_error(tmp_path, content):
    path = tmp_path / "t.npz"
    path.write_bytes(content)
    with pytest.raises(TableFormatError, match="mnistmem search"):
        load_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(TableFormatError, match="no such table"):
        load_table(tmp_path / "absent.npz")


def test_cli_search_writes_a_table(tmp_path, capsys):
    train, _ = load_mnist("train")
    samples = tmp_path / "samples.npz"
    np.savez(samples, images=train[[5, 6, 7]], seeds=np.array([1, 2, 3]))
    out = tmp_path / "table.npz"
    assert main(["search", str(samples), "--out", str(out), "--no-ct"]) == 0
    table = load_table(out)
    assert list(table.nn_index[:, 0]) == [5, 6, 7] and list(table.seed) == [1, 2, 3]
    assert table.flags["l2"].all() and table.k == 50
    assert "table written" in capsys.readouterr().out


def test_cli_search_rejects_bad_files_and_options_with_one_line(tmp_path, capsys):
    from PIL import Image

    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros(3), b=np.zeros(3))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 10), np.uint8))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("hello")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "digit.png")
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, images=np.zeros((3, 28, 28), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:60])
    (tmp_path / "folder").mkdir()
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 28, 28), np.uint8))
    cases = [
        ([str(bad)], "'images'"),
        ([str(wrong), "--no-ct"], "shape"),
        ([str(tmp_path / "empty.npz")], "is empty"),
        ([str(tmp_path / "text.npz")], "not a NumPy"),
        ([str(tmp_path / "digit.png")], "not a NumPy"),
        ([str(truncated)], "cannot read"),
        ([str(tmp_path / "folder")], "is a folder"),
        ([str(tmp_path / "absent.npy")], "does not exist"),
        ([str(good), "--out", str(tmp_path / "folder")], "--out"),
        ([str(good), "--baseline", str(tmp_path / "folder")], "--baseline"),
        ([str(good), "--k", "5"], "--k must be at least 50"),
    ]
    for extra, message in cases:
        assert main(["search", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (extra, err)
