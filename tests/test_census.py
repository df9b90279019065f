"""The census: chunks equal one long draw, a census stopped between chunks resumes to the same result, and
what it commits agrees with the compact table it keeps."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from mnistmem import results, sampling
from mnistmem.book.chapter import Chapter
from mnistmem.copies import HEADLINE
from mnistmem.experiments import census, get
from mnistmem.experiments.runner import run_experiment
from mnistmem.integrity import sha256_file
from mnistmem.models import build_model

from .conftest import TINY


def test_a_run_drawn_in_parts_equals_one_draw():
    torch.manual_seed(0)
    model = build_model("gan", **TINY["gan"]).eval()
    whole, seeds = sampling.sample(model, 384, seed=5, batch_size=128, progress=False)
    part, part_seeds = sampling.sample(model, 256, seed=5, batch_size=128, progress=False, first=128)
    assert np.array_equal(part, whole[128:]) and np.array_equal(part_seeds, seeds[128:])
    with pytest.raises(ValueError, match="multiple of batch_size"):
        sampling.sample(model, 10, seed=5, batch_size=128, first=100)


def _summaries(root):
    import json

    manifest = json.loads((root / "smoke" / "census" / "manifest.json").read_text())
    return {name: record["summary"] for name, record in manifest["stages"].items()}


def test_a_census_stopped_between_chunks_resumes_to_the_same_result(smoke_results, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(smoke_results, root, ignore=shutil.ignore_patterns("census"))
    sittings = 0
    while True:
        try:
            run_experiment(
                get("census"), "smoke", root=root, progress=False, log=lambda _: None, deadline=time.monotonic()
            )
            break
        except census.CensusPaused:
            sittings += 1
    assert sittings >= 2  # the GAN's and the VAE's 640 samples take three chunks each
    assert _summaries(root) == _summaries(smoke_results)


def test_the_committed_census_agrees_with_its_compact_table(smoke_results):
    from mnistmem import results

    result = results.load("census", "smoke", root=smoke_results)
    for stage in result.manifest["stages"]:
        summary = result.summary(stage)
        folder = result.dir / result.stage(stage)["folder"]
        table = folder / "scratch" / census.CENSUS_FILE
        assert sha256_file(table) == summary["census_sha256"]
        with np.load(table, allow_pickle=False) as columns:
            flags, names = columns["flags"], [str(c) for c in columns["criteria"]]
            assert len(flags) == summary["n"]
            assert int((flags > 0).sum()) == summary["flagged_by_any"]
            for row in summary["criteria"]:
                bit = names.index(row["criterion"])
                assert int((flags >> bit & 1).sum()) == row["count"] and row["n"] == summary["n"]
                assert row["rate"] <= row["rate_upper_95"]
        flagged = result.arrays(stage, census.FLAGGED_FILE)
        assert len(flagged["images"]) == summary["flagged_stored"]
        assert sum(d["samples"] for d in summary["per_digit"]) == summary["n"]


def test_the_book_reads_the_census_as_a_table_pairs_a_gallery_and_a_digit_chart(smoke_results, monkeypatch):
    from mnistmem.book import census as book

    result = results.load("census", "smoke", root=smoke_results)
    shown, glued = [], {}
    monkeypatch.setattr(book, "glue", lambda name, value: glued.__setitem__(name, value))
    monkeypatch.setattr(book, "show_html", shown.append)
    monkeypatch.setattr(book, "show", lambda fig, caption: shown.append((fig, caption)))
    ch = Chapter({"census": result})
    book.census_table(ch)
    families = book.census_families(result)
    assert families == ["gan", "vae", "diffusion"] and "samples searched" in shown[0]
    for family in families:
        summary = result.summary(f"census_{family}")
        assert glued[f"census_{family}"].startswith(f"Among {summary['n']:,} samples")
        book.flagged_pairs(ch, family)
        html_or_note = shown[-1]
        assert ("mnistmem-pair" in html_or_note) == (summary["flagged_stored"] > 0)
        strict = book.strict_flags(ch, family)
        by = {row["criterion"]: row["count"] for row in summary["criteria"]}
        assert strict["counts"] == {c: n for c, n in by.items() if c not in (HEADLINE, "nn_ratio")}
        assert max(strict["counts"].values()) <= strict["union"] <= summary["flagged_by_any"]
        assert strict["ratio_passed"] <= strict["union"]
        if summary["flagged_stored"] == summary["flagged_by_any"]:  # the digits are read off the stored samples
            assert sum(strict["digits"].values()) == strict["union"]
        assert glued[f"census_strict_{family}"].endswith(".")
        book.most_often_nearest(ch, family)
        fig, caption = shown[-1]
        assert "nearest to the most" in caption and len(fig.data) == 2
    book.per_digit_chart(ch)
    fig, _ = shown[-1]
    assert len(fig.data) == 1 + len(families)
    assert all(abs(sum(trace.y) - 100) < 1e-6 for trace in fig.data)  # shares of all samples, digit by digit
    assert glued["census_digits"].startswith("Measured against the training set, the GAN makes too many")


def test_the_introduction_gives_one_census_row_per_model_with_its_bound(smoke_results):
    from mnistmem.book.summary import census_findings

    result = results.load("census", "smoke", root=smoke_results)
    rows = census_findings(result)
    assert [row[0].split(",")[0] for row in rows] == ["GAN", "VAE", "Diffusion"]
    for row, family in zip(rows, ("gan", "vae", "diffusion"), strict=True):
        head = next(r for r in result.summary(f"census_{family}")["criteria"] if r["criterion"] == HEADLINE)
        assert f"{head['count']:,} are copies" in row[1] and "at most" in row[1]
