"""The onset of copying: the estimator on synthetic curves (first crossing of the false-alarm bar, censored runs
kept as such, failed runs kept out of the fit, a planted linear law recovered), and the onset experiment at smoke
scale (resume after a pause, rows and galleries consistent, disjoint halves sampled from the same noise)."""

from __future__ import annotations

import numpy as np
import pytest

from mnistmem import onset


def _curve(steps, shares, recognised=0.95):
    return [{"step": s, "share": v, "recognised": recognised} for s, v in zip(steps, shares, strict=True)]


def test_the_onset_is_the_first_checkpoint_above_the_bar_and_says_whether_it_held():
    steps = [500, 1000, 1500, 2000]
    held = onset.onset(100, _curve(steps, [0.0, 0.001, 0.05, 0.2]), bar=0.002, gate=0.9)
    assert held.step == 1500 and held.sustained and held.budget == 2000 and held.learned
    fell = onset.onset(100, _curve(steps, [0.0, 0.01, 0.001, 0.2]), bar=0.002, gate=0.9)
    assert fell.step == 1000 and not fell.sustained
    never = onset.onset(100, _curve(steps, [0.0, 0.001, 0.0, 0.002]), bar=0.002, gate=0.9)
    assert never.step is None and never.budget == 2000 and not never.sustained  # at the bar is not above it


def test_a_run_that_never_meets_the_quality_gate_is_marked_and_kept_out_of_the_fit():
    curve = [{"step": s, "share": 0.5, "recognised": 0.4} for s in (500, 1000)]
    failed = onset.onset(10, curve, bar=0.01, gate=0.9)
    assert not failed.learned and failed.good_samples_step is None and failed.step == 500
    good = [onset.onset(n, _curve([n, 2 * n], [0.0, 0.5]), bar=0.01, gate=0.9) for n in (100, 200)]
    line = onset.fit_line([failed, *good])
    assert line["sizes"] == [100, 200]


def test_a_planted_linear_law_is_recovered_and_a_censored_run_that_contradicts_it_is_named():
    slope, intercept, steps = 4.0, 300, list(range(250, 20_001, 250))
    runs = []
    for n in (100, 200, 400, 800, 1600):
        start = slope * n + intercept
        runs.append(onset.onset(n, _curve(steps, [0.3 if s >= start else 0.0 for s in steps]), bar=0.01, gate=0.9))
    late = onset.onset(6400, _curve(steps[:20], [0.0] * 20), bar=0.01, gate=0.9)  # budget 5,000: not yet
    early = onset.onset(3200, _curve(steps, [0.0] * len(steps)), bar=0.01, gate=0.9)  # budget 20,000 > 13,100
    line = onset.fit_line([*runs, late, early])
    assert line["slope"] == pytest.approx(slope, rel=0.05) and line["r2"] > 0.99
    assert line["censored"] == [6400, 3200] and line["censored_below_line"] == [3200]
    assert onset.fit_line(runs[:1]) is None
    # a run whose budget ends exactly at the predicted onset has not passed the line; one that ran further has
    grid = [500, 1000, 2000, 4000, 8000]
    pair = [
        onset.onset(n, _curve(grid, [0.0 if s < 10 * n else 0.3 for s in grid]), bar=0.01, gate=0.9) for n in (100, 200)
    ]
    at_line = onset.onset(800, _curve(grid, [0.0] * 5), bar=0.01, gate=0.9)
    past = onset.onset(700, _curve(grid, [0.0] * 5), bar=0.01, gate=0.9)
    assert onset.fit_line([*pair, at_line, past])["censored_below_line"] == [700]


def test_runs_below_the_gate_keep_their_best_quality_and_join_only_the_ungated_line():
    good = [onset.onset(n, _curve([n, 2 * n, 4 * n], [0.0, 0.0, 0.5]), bar=0.01, gate=0.9) for n in (100, 200)]
    short = onset.onset(400, _curve([400, 800, 1600], [0.0, 0.0, 0.5], recognised=0.85), bar=0.01, gate=0.9)
    assert not short.learned and short.best_quality == pytest.approx(0.85) and short.step == 1600
    assert onset.fit_line([*good, short])["sizes"] == [100, 200]
    everything = onset.fit_line([*good, short], gated=False)
    assert everything["sizes"] == [100, 200, 400] and everything["slope"] == pytest.approx(4.0)


def test_share_interval_brackets_the_share_and_refuses_an_empty_count():
    share, low, high = onset.share_interval(5, 2000)
    assert low < share == 0.0025 < high
    assert onset.share_interval(0, 2000)[1] == 0.0
    with pytest.raises(ValueError, match="at least one sample"):
        onset.share_interval(0, 0)


def _onset_manifest(root):
    import json

    return json.loads((root / "smoke" / "onset" / "manifest.json").read_text())["stages"]


def test_a_grid_run_stopped_in_training_and_between_checkpoints_resumes_to_the_same_rows(smoke_results, tmp_path):
    import shutil
    import time

    from mnistmem.experiments import get
    from mnistmem.experiments.runner import run_experiment
    from mnistmem.training import TrainingPaused

    root = tmp_path / "results"
    shutil.copytree(smoke_results, root)
    onset_dir = root / "smoke" / "onset"
    (onset_dir / "manifest.json").unlink()
    for folder in onset_dir.glob("grid_vae_100-*"):  # the other stages stay finished: only this one reruns
        shutil.rmtree(folder)
    sittings = 0
    while True:
        try:
            run_experiment(
                get("onset"), "smoke", root, False, lambda _: None, only={"grid_vae_100"}, deadline=time.monotonic()
            )
            break
        except TrainingPaused:
            sittings += 1
    assert sittings >= 2
    run_experiment(get("onset"), "smoke", root, False, lambda _: None)
    resumed, whole = _onset_manifest(root), _onset_manifest(smoke_results)
    assert {k: v["summary"] for k, v in resumed.items()} == {k: v["summary"] for k, v in whole.items()}


def test_the_onset_stage_agrees_with_the_grid_rows_and_the_galleries_with_the_grid(smoke_results):
    from mnistmem import results
    from mnistmem.experiments import onset as experiment
    from mnistmem.experiments import scales

    result = results.load("onset", "smoke", root=smoke_results)
    settings = scales.config("smoke", "onset")
    summary = result.summary("onset")
    for family, sizes in settings["sizes"].items():
        found = summary["families"][family]["onsets"]
        halves = [n for n in sizes if family == "diffusion" and n in settings["halves"]]
        assert sorted((o["n"], o["run"]) for o in found) == sorted(
            [(n, "a") for n in sizes] + [(n, "b") for n in halves]
        )
        for entry in found:
            n, run = entry["n"], entry["run"]
            stage = f"grid_{family}_{n}" + ("_b" if run == "b" else "")
            grid = result.summary(stage)
            assert [r["step"] for r in grid["curve"]] == settings["grid"] and grid["n"] == n and grid["run"] == run
            rows = [
                {
                    "step": r["step"],
                    "low": r["criteria"]["nn_ratio"]["ci_low"],
                    "recognised": min(r["recognised_share"], r["handwriting_share"]),
                }
                for r in grid["curve"]
            ]
            bar = max(r["criteria"]["nn_ratio"]["baseline_ci_high"] for r in grid["curve"])
            gate = summary["families"][family]["gate"]
            expected = onset.onset(n, rows, bar=bar, gate=gate, share="low")
            passes = None if expected.step is None else expected.step * grid["batch_size"] / n
            assert {**expected.as_dict(), "run": run, "passes_at_onset": passes} == entry
            for r in grid["curve"]:
                assert r["passes"] == pytest.approx(r["step"] * grid["batch_size"] / n)
                own = r["own_nearest"]
                assert own["ci_low"] <= own["share"] <= own["ci_high"] and own["count"] <= r["n_samples"]
            copied = grid["final_copies"]
            assert sum(m["samples"] for m in copied["most_copied"]) <= copied["count"] <= grid["curve"][-1]["n_samples"]
            gallery = result.arrays(stage, experiment.GALLERY_FILE)
            assert gallery["first_seeds"].shape == (len(settings["grid"]), experiment.GALLERY_SEEDS, 28, 28)
            assert gallery["closest"].shape == gallery["partners"].shape == (experiment.GALLERY_CLOSEST, 28, 28)
            assert (gallery["partner_sources"] >= 0).all()  # a real digit of the run's own training set


def test_the_two_halves_share_no_digit_and_their_same_noise_pairs_are_measured(smoke_results):
    from mnistmem import results
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments import onset as experiment
    from mnistmem.experiments import scales

    result = results.load("onset", "smoke", root=smoke_results)
    for n in scales.config("smoke", "onset")["halves"]:
        summary = result.summary(f"same_noise_{n}")
        a, b = (DataSpec.from_dict(h["data"]).indices() for h in summary["halves"])
        assert len(a) == len(b) == n == summary["half_size"] and not np.isin(a, b).any()
        pairs = result.arrays(f"same_noise_{n}", experiment.PAIRS_FILE)
        kept = min(experiment.PAIRS_KEPT, summary["n"])
        assert pairs["a"].shape == pairs["b"].shape == pairs["nearest_a"].shape == (kept, 28, 28)
        distance = np.sqrt(((pairs["a"].astype(float) - pairs["b"]) ** 2).sum(axis=(1, 2))) / 255
        assert np.allclose(distance, pairs["between"])
        low, high = summary["between_quartiles"]
        assert low <= summary["median_between"] <= high


def test_the_handwriting_bar_admits_training_digits_and_refuses_noise_the_classifier_accepts(smoke_results):
    """Why the quality gate is not the classifier alone: it is confident on uniform noise, which lies farther
    from every training digit than the bar; a training digit itself (distance 0) and a test digit mostly pass."""
    from types import SimpleNamespace

    from mnistmem import data, quality, results
    from mnistmem.experiments.onset import handwriting_bar
    from mnistmem.models import classifier
    from mnistmem.neighbors import knn

    ctx = SimpleNamespace(upstream=lambda name: results.load(name, "smoke", root=smoke_results))
    bar = handwriting_bar(ctx)
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    noise = np.random.default_rng(0).integers(0, 256, size=(200, 28, 28)).astype(np.uint8)
    _, confidence = quality.classifier_confidence(noise, classifier.load_pretrained())
    assert (confidence >= 0.9).mean() > 0.5  # the classifier alone would call noise digits
    assert knn(noise, train, k=1, progress=False)[0][:, 0].min() > bar
    assert (knn(test[:200], train, k=1, progress=False)[0][:, 0] <= bar).mean() > 0.9


def test_handwriting_like_uses_the_test_digits_quantile_and_refuses_an_empty_baseline():
    from mnistmem import quality

    test_nn = np.arange(1, 101, dtype=np.float64)  # the 99% quantile of 1..100 is 99.01
    assert quality.handwriting_bar(test_nn) == pytest.approx(np.quantile(test_nn, 0.99))
    assert quality.handwriting_like(np.array([0.0, 99.0, 99.5, 1e6]), test_nn).tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="test_nn_distance"):
        quality.handwriting_bar(np.array([]))
    with pytest.raises(ValueError, match="test_nn_distance"):
        quality.handwriting_bar(np.ones((3, 2)))


def test_the_book_draws_the_curves_the_onsets_the_seeds_and_the_same_noise_pairs(smoke_results, monkeypatch):
    from mnistmem import results
    from mnistmem.book import onset as book
    from mnistmem.book.chapter import Chapter
    from mnistmem.experiments import scales

    result = results.load("onset", "smoke", root=smoke_results)
    shown, glued = [], {}
    monkeypatch.setattr(book, "glue", lambda name, value: glued.__setitem__(name, value))
    monkeypatch.setattr(book, "show", lambda fig, caption: shown.append((fig, caption)))
    monkeypatch.setattr(book, "show_html", shown.append)
    ch = Chapter({"onset": result})
    settings = scales.config("smoke", "onset")
    book.onset_curves(ch)
    fig, _ = shown[-1]
    assert [trace.name for trace in fig.data] == [f"{n:,} digits" for n in settings["sizes"]["diffusion"]]
    passes = fig.layout.updatemenus[0].buttons[1].args[0]["x"]
    assert [list(x) for x in passes] == [
        [r["passes"] for r in run["curve"]] for run in book.grid_runs(result, "diffusion")
    ]
    book.onset_chart(ch)
    assert glued["onset_sentence"].startswith("The diffusion model")
    book.seeds_over_training(ch, "diffusion", "smallest")
    assert "mnistmem-pair" in shown[-1]
    book.seeds_over_training(ch, "diffusion", "largest")
    assert f"trained on {settings['sizes']['diffusion'][-1]:,} digits" in shown[-2][1]
    # what the summary tables quote as "trained on n digits": each family's smallest run at its last checkpoint
    smallest = book.smallest_runs(result)
    first = book.grid_runs(result, "diffusion")[0]
    assert smallest["diffusion"]["n"] == settings["sizes"]["diffusion"][0] == first["n"]
    assert smallest["diffusion"]["steps"] == settings["grid"][-1]
    assert smallest["diffusion"]["own_share"] == first["curve"][-1]["own_nearest"]["share"]
    assert smallest["diffusion"]["rate"] == first["curve"][-1]["criteria"]["nn_ratio"]["rate"]
    last = first["curve"][-1]
    assert smallest["diffusion"]["quality"] == min(last["recognised_share"], last["handwriting_share"])
    for which, n in (("smallest", min(settings["halves"])), ("largest", max(settings["halves"]))):
        book.same_noise(ch, which)
        assert glued[f"same_noise_{which}"].startswith(f"With {n:,} digits in each half")
        assert glued[f"same_noise_{which}_n"] == f"{n:,}"
    book.seed_share(ch)
    summary = result.summary(f"seed_share_{min(settings['halves'])}")
    bars = next(fig for fig, _ in reversed([s for s in shown if isinstance(s, tuple)]) if fig.data[0].type == "bar")
    assert list(bars.data[0].y) == pytest.approx([100 * r["share"] for r in summary["digits"]])
    assert len(bars.data[0].y) == summary["training_digits"] == min(settings["halves"])
    assert glued["seed_share_n"] == f"{summary['n']:,}" and glued["seed_share_sentence"]


def test_the_seed_share_sentence_gives_the_top_share_the_even_share_and_says_when_there_is_none():
    from mnistmem.book.sentences import seed_share_sentence

    digits = [{"source": 4242, "seeds": 300, "share": 0.03, "ci_low": 0.027, "ci_high": 0.034}]
    summary = {
        "n": 10_000,
        "training_digits": 100,
        "copies": 5_000,
        "copy_share": 0.5,
        "copy_ci": [0.49, 0.51],
        "test_false_alarm_share": 0.001,
        "even_share": 0.005,
        "digits_above_even": 30,
        "digits_below_even": 40,
        "digits_never": 5,
        "uniform_p_value": 1e-30,
        "digits": digits,
    }
    text = seed_share_sentence(summary)
    assert "#4242 came back from 3.00% (2.70% to 3.40%), about one seed in 33" in text
    assert "each digit back from 0.50% of all seeds" in text and "30 of the 100 digits" in text
    assert "5 never" in text and "favours some of its digits" in text
    assert "cannot be ruled out" in seed_share_sentence({**summary, "uniform_p_value": 0.4})
    assert "every one of them came back at least once" in seed_share_sentence({**summary, "digits_never": 0})
    none = seed_share_sentence({**summary, "copies": 0, "uniform_p_value": None})
    assert none.startswith("None of 10,000 seeds") and "no share to measure" in none


def test_onset_and_same_noise_sentences_say_when_the_law_holds_and_what_the_halves_show():
    from mnistmem.book.sentences import onset_sentence, same_noise_sentence

    def o(n, step, budget=8000, learned=True, best=0.95):
        passes = None if step is None else step * 64 / n
        return {"n": n, "step": step, "budget": budget, "learned": learned, "run": "a", "best_quality": best,
                "passes_at_onset": passes}  # fmt: skip

    line = {"slope": 2.0, "intercept": 300, "r2": 0.97, "sizes": [100, 200, 400], "censored_below_line": []}
    holds = onset_sentence(
        {"diffusion": {"onsets": [o(100, 500), o(200, 1000), o(400, 1000), o(3200, None)], "line": line}}
    )
    assert "began to copy after 500 steps on 100 digits, 1,000 steps on 200 digits and 1,000 steps on 400" in holds
    assert "had not begun within 8,000 steps on 3,200 digits" in holds and "as Bonnaire and colleagues predict" in holds
    assert "not enough" not in holds
    broken = onset_sentence({"diffusion": {"onsets": [o(100, 500)], "line": {**line, "censored_below_line": [1600]}}})
    assert "1,600 digits trained past the line's prediction without copying" in broken and "not enough to say" in broken
    failed = onset_sentence({"gan": {"onsets": [o(100, 250, learned=False, best=0.5)], "line": None, "gate": 0.9}})
    assert failed == (
        "The GAN began to copy after 250 steps on 100 digits, though there its samples stayed short of the quality "
        "gate (at best 50% of its samples recognised as handwritten digits, against the 90% the gate asks)."
    )
    # onsets at equal passes are said so; a line that rests on runs below the gate is said to, and only then
    below = [o(100, 1000), o(200, 2000), o(400, 4000, learned=False, best=0.85), o(800, None, learned=False)]
    gated = {**line, "slope": 10.0, "intercept": 0.0, "r2": 1.0, "sizes": [100, 200]}
    both = onset_sentence(
        {"diffusion": {"onsets": below, "line": gated, "line_all": {**gated, "sizes": [100, 200, 400]}, "gate": 0.9}}
    )
    assert "each digit had been seen about 640 times" in both
    assert "had not begun within 8,000 steps on 800 digits, where its samples stayed short" in both
    assert "2 sizes): not enough to say" in both
    assert "Counting the runs below the gate as well" in both and "rests on models that had not yet met" in both
    alone = onset_sentence({"diffusion": {"onsets": below[:2], "line": gated, "line_all": gated, "gate": 0.9}})
    assert "Counting the runs below the gate" not in alone

    def half(closer, own, recognised=0.95):
        return {
            "closer_to_own_share": closer,
            "median_to_own": own,
            "median_to_other_half": 5.0,
            "recognised_share": recognised,
        }

    copying = same_noise_sentence(
        {"half_size": 100, "median_between": 6.0, "halves": [half(0.95, 0.4), half(0.9, 0.5)]}
    )
    assert "each model reproduces its own training digits" in copying
    general = same_noise_sentence(
        {"half_size": 3200, "median_between": 1.5, "halves": [half(0.5, 3.0), half(0.55, 3.2)]}
    )
    assert "both draw nearly the same digit though they share no training digit" in general
    junk = same_noise_sentence(
        {"half_size": 3200, "median_between": 1.5, "halves": [half(0.5, 3.0, 0.2), half(0.5, 3, 0.3)]}
    )
    assert "images that are not all digits yet" in junk
    # the classifier is confident on noise: a half whose samples are not handwriting-like is not "the same digit"
    noise = {**half(0.5, 3.0), "handwriting_share": 0.3}
    fooled = same_noise_sentence({"half_size": 3200, "median_between": 1.5, "halves": [noise, half(0.5, 3.2)]})
    assert "not all digits yet" in fooled and "30.00%" in fooled


def test_seed_share_counts_every_seed_that_reproduces_a_planted_digit_and_none_elsewhere(monkeypatch, tmp_path):
    """The positive control for "sampling is random": samples that are exact copies of training digit 3 (from
    12 seeds) and digit 7 (from 4), among test digits the model never saw. Digit 3's share of all seeds must be
    12/n with an interval that excludes the even share, digit 7's 4/n, every other digit 0, and the gallery must
    hold the copies with their own seeds."""
    from mnistmem import checkpoints, data
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments import onset as experiment
    from mnistmem.experiments.runner import StageContext

    spec = {"n": 200, "seed": 0, "part": [0, 2]}
    own = DataSpec.from_dict(spec).build().images
    test, _ = data.load_mnist("test")
    images = np.concatenate([np.repeat(own[3][None], 12, axis=0), np.repeat(own[7][None], 4, axis=0), test[:84]])
    seeds = np.arange(1000, 1000 + len(images))
    monkeypatch.setattr(experiment, "draw", lambda model, config, progress=False: (images, seeds))
    monkeypatch.setattr(checkpoints, "load_model", lambda path: None)
    ctx = StageContext(
        dir=tmp_path,
        config={"run": "grid_diffusion_100", "n": len(images), "seed": 8, "sampler": {}},
        scale="smoke",
        root=tmp_path,
        inputs={"grid_diffusion_100": tmp_path},
        summaries={"grid_diffusion_100": {"data": spec}},
        progress=False,
    )
    summary = experiment.seed_share_stage(ctx)
    rows = {r["row"]: r for r in summary["digits"]}
    assert summary["training_digits"] == 100 and summary["n"] == 100
    assert rows[3]["seeds"] == 12 and rows[3]["share"] == pytest.approx(0.12) and rows[7]["seeds"] == 4
    assert summary["copies"] >= 16 and rows[3]["ci_low"] > summary["even_share"]
    copied_elsewhere = summary["copies"] - 16  # a test digit the ratio test flags: a false alarm, rare
    assert sum(r["seeds"] for j, r in rows.items() if j not in (3, 7)) == copied_elsewhere <= 2
    assert [r["row"] for r in summary["digits"][:2]] == [3, 7] and summary["uniform_p_value"] < 1e-6
    kept = np.load(tmp_path / experiment.SEED_GALLERY_FILE)
    assert (kept["training"][0] == own[3]).all() and (kept["samples"][0] == own[3]).all()
    assert list(kept["seeds"][0]) == list(range(1000, 1008)) and (kept["samples"][1, :4] == own[7]).all()
    assert (kept["seeds"][1, 4:] == -1).all()  # digit 7 came back from 4 seeds only: the rest of its row is empty


def _seed_share_and_small(root, scale: str) -> tuple[dict, dict, dict]:
    """The onset experiment's seed_share summary, the small experiment's own-training-set ratio-test row, and the
    CPU kinds that drew each (the two are bit-identical only when drawn on the same kind)."""
    from mnistmem import results

    onset_result = results.load("onset", scale, root=root)
    small = results.load("small", scale, root=root)
    share_stage = next(s for s in onset_result.manifest["stages"] if s.startswith("seed_share_"))
    tag = share_stage.removeprefix("seed_share_")
    own = small.summary(f"score_diffusion_{tag}")["against_own_training_set"]
    row = next(r for r in own["criteria"] if r["criterion"] == "nn_ratio")
    kinds = {
        name: ((result.stage(stage).get("hardware") or {}).get("cpu") or {}).get("kind")
        for name, result, stage in (
            ("seed_share", onset_result, share_stage),
            ("small", small, f"sample_diffusion_{tag}"),
        )
    }
    return onset_result.summary(share_stage), row, kinds


def test_small_scores_the_very_samples_of_seed_share(smoke_results):
    """`small` draws seed_share's seeds from the same model in the same blocks: judged against the run's own digits
    by the same ratio test, it counts exactly the copies seed_share counted (one set of samples, two chapters)."""
    share, row, _ = _seed_share_and_small(smoke_results, "smoke")
    assert (row["n"], row["count"]) == (share["n"], share["copies"])


def test_the_committed_small_samples_are_seed_shares_where_one_cpu_kind_drew_both():
    from mnistmem import results

    if "cpu" not in results.available_scales("small") or "cpu" not in results.available_scales("onset"):
        pytest.skip("no committed cpu results")
    share, row, kinds = _seed_share_and_small(None, "cpu")
    if len(set(kinds.values())) != 1 or None in kinds.values():
        pytest.skip(f"drawn on different CPU kinds: {kinds}")
    assert (row["n"], row["count"]) == (share["n"], share["copies"])
