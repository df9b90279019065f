"""The dose experiment: the canary assignment, a positive control (samples that are exact copies of one canary
are counted as reproducing it, and only it, by the duplicate-aware judging), and the pooled curve."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mnistmem.experiments import dose


def test_the_assignment_plants_each_stroke_once_per_run_and_a_rotation_moves_every_stroke_to_another_count():
    counts = [1, 3, 10, 30, 100, 300, 1000]
    first, rotated = dose.assignment(counts, 3), dose.assignment(counts, 3, rotation=3)
    assert [c["count"] for c in first] == [c for c in counts for _ in range(3)]
    assert [c["glyph"] for c in first] == [c["glyph"] for c in rotated] and len({c["glyph"] for c in first}) == 21
    assert all(a["count"] != b["count"] for a, b in zip(first, rotated, strict=True))
    with pytest.raises(ValueError, match="stroke canaries exist"):
        dose.assignment(counts, 4)


def test_exact_copies_of_one_canary_are_counted_as_reproducing_it_and_no_other(monkeypatch, tmp_path):
    """The positive control: five samples identical to canary 0 (planted 10 times, so five identical rows in
    the training set) must be reproductions of it under the pixel distance and the ratio test, which a ratio
    taken over the duplicated rows (0 / 0) would miss."""
    from mnistmem import checkpoints, data
    from mnistmem.canaries import render_canary
    from mnistmem.experiments.runner import StageContext

    spec = {"n": 200, "seed": 0, "canaries": dose.assignment([1, 10], 1)}
    copy = render_canary(spec["canaries"][1]["glyph"])
    test, _ = data.load_mnist("test")
    images = np.concatenate([np.repeat(copy[None], 5, axis=0), test[:59]])
    monkeypatch.setattr(dose, "draw", lambda model, config, progress=False: (images, np.arange(len(images))))
    monkeypatch.setattr(checkpoints, "load_model", lambda path: None)
    ctx = StageContext(
        dir=tmp_path,
        config={"from": "train_x", "n": len(images), "seed": 1, "sampler": {}, "data": spec},
        scale="smoke",
        root=tmp_path,
        inputs={"train_x": tmp_path},
        progress=False,
    )
    summary = dose.reproduction_stage(ctx)
    once, ten = summary["canaries"]
    assert ten["count"] == 10 and ten["reproduced"]["l2"] == 5 and ten["reproduced"]["nn_ratio"] == 5
    assert ten["closest_distance"] == 0.0 and ten["nearest_is_canary"] == 5
    assert all(v == 0 for v in once["reproduced"].values())
    kept = np.load(tmp_path / dose.CLOSEST_FILE)
    assert kept["images"].shape == (2, dose.CLOSEST_KEPT, 28, 28) and (kept["images"][1, :5] == copy).all()


def test_the_curve_pools_canaries_and_runs_and_keeps_each_canary_s_share():
    def run(shares):
        rows = [
            {
                "glyph": f"stroke:{k}",
                "count": c,
                "training_share": c / 1000,
                "closest_distance": 1.0 + k,
                "reproduced": {"l2": int(s * 100)},
                "nearest_is_canary": int(s * 100) + 1,  # resembling it: at least every copy, here one more
            }
            for k, (c, s) in enumerate(shares)
        ]
        return {"n": 100, "canaries": rows}

    ctx = SimpleNamespace(
        summaries={
            "reproduction_diffusion": run([(1, 0.0), (1, 0.1), (100, 0.5)]),
            "reproduction_diffusion_b": run([(1, 0.0), (100, 0.3), (100, 0.7)]),
        }
    )

    curve = dose.dose_stage(ctx)["families"]["diffusion"]
    assert curve["runs"] == ["diffusion", "diffusion_b"]
    one, hundred = curve["points"]
    assert one["count"] == 1 and one["canaries"] == 3 and one["samples"] == 300
    assert one["by_criterion"]["l2"]["reproduced"] == 10 and one["closest_distance"] == 1.0
    assert hundred["by_criterion"]["l2"]["share"] == pytest.approx(1.5 / 3)
    assert sorted(c["share"] for c in hundred["by_criterion"]["l2"]["per_canary"]) == [0.3, 0.5, 0.7]
    low, high = hundred["by_criterion"]["l2"]["ci_low"], hundred["by_criterion"]["l2"]["ci_high"]
    assert low < 0.5 < high
    # the samples nearest each canary are pooled the same way, beside the definitions
    assert hundred["by_criterion"][dose.NEAREST]["reproduced"] == 150 + 3
    assert one["by_criterion"][dose.NEAREST]["reproduced"] == 10 + 3


def test_the_book_draws_the_dose_curve_and_every_canary_beside_its_closest_samples(smoke_results, monkeypatch):
    from mnistmem import results
    from mnistmem.book import dose as book
    from mnistmem.book.chapter import Chapter

    result = results.load("dose", "smoke", root=smoke_results)
    shown, glued = [], {}
    monkeypatch.setattr(book, "glue", lambda name, value: glued.__setitem__(name, value))
    monkeypatch.setattr(book, "show", lambda fig, caption: shown.append((fig, caption)))
    ch = Chapter({"dose": result})
    book.dose_chart(ch)
    fig, caption = shown[-1]
    families = result.summary("dose")["families"]
    assert len(fig.data) == 2 * len(families) * len(book.CHART_CRITERIA)  # a line and its dots per definition
    assert sum(trace.visible for trace in fig.data) == 2 * len(families)
    assert glued["dose_sentence"].startswith("By the nearest-neighbour ratio test, the diffusion model")
    book.canary_gallery(ch)
    fig, caption = shown[-1]
    canaries = len(result.summary("reproduction_diffusion")["canaries"])
    assert len(fig.data[1].text) == canaries * (1 + dose.CLOSEST_KEPT) and "closest" in caption


def test_dose_sentence_names_the_first_count_reproduced_and_the_spread_of_single_canaries():
    from mnistmem.book.sentences import dose_sentence

    def point(count, share, low, singles, n=100):
        per = [{"share": s, "glyph": "stroke:0", "run": "diffusion"} for s in singles]
        row = {"share": share, "ci_low": low, "per_canary": per, "reproduced": round(share * n * len(singles))}
        return {
            "count": count,
            "canaries": len(singles),
            "samples": n * len(singles),
            "by_criterion": {"nn_ratio": row},
        }

    grows = {
        "diffusion": {
            "runs": ["diffusion", "diffusion_b"],
            "points": [point(1, 0, 0, [0, 0]), point(100, 0.01, 0.004, [0.0, 0.02]), point(1000, 0.3, 0.2, [0.1, 0.5])],
        }
    }
    text = dose_sentence(grows)
    # two runs of 100 samples, one canary of each count per run: 2 reproductions among 200 samples
    assert "reproduced canaries from 100 copies on (2 reproductions among 200 samples there)" in text
    assert "and at 1,000 copies each canary came back in 30.00% of its samples on average" in text
    assert "(single canaries from 10.00% to 50.00%)" in text and "resembled" not in text
    grows["diffusion"]["points"][-1]["by_criterion"]["nearest_is_canary"] = {"share": 0.4}
    assert "while 40.00% of its samples resembled such a canary more than any digit" in dose_sentence(grows)
    none = dose_sentence({"gan": {"points": [point(1, 0, 0, [0]), point(1000, 0, 0, [0])]}})
    assert none == "By the nearest-neighbour ratio test, the GAN reproduced no canary, even one planted 1,000 times."


def test_the_gallery_note_says_what_the_closest_samples_are():
    from mnistmem.book.dose import gallery_note

    def summary(closest):
        rows = [{"count": c, "closest_distance": d} for c, d in ((1, 7.0), (1000, closest))]
        return {"n": 10_000, "thresholds": {"l2": 1.0}, "canaries": rows}

    near = gallery_note(summary(0.3), "diffusion")
    assert "planted 1,000 times" in near and "the strokes themselves" in near and "0.30" in near
    far = gallery_note(summary(5.9), "gan")
    assert far.startswith("None of the 10,000 samples of the GAN") and "5.90 away" in far and "mode dropping" in far
    assert "mode dropping" not in gallery_note(summary(5.9), "diffusion")
    assert "resemble the strokes, but none is a copy" in gallery_note(summary(1.4), "diffusion")
