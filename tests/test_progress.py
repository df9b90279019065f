"""The training experiment as the book will read it: every family's curve holds the quality and copy measures
per kept checkpoint, its figure and sentences are built from them, and an exported sampler from its final
checkpoint draws that checkpoint's samples (the stage `main` will read its models through)."""

from __future__ import annotations

import math

from mnistmem import results
from mnistmem.book import progress
from mnistmem.experiments.runner import StageContext
from mnistmem.experiments.stages import sampler_stage


def test_the_training_curves_hold_every_measure_and_read_as_sentences(smoke_results, monkeypatch):
    training = results.load("training", "smoke", root=smoke_results)
    glued = {}
    monkeypatch.setattr(progress, "glue", lambda name, value: glued.__setitem__(name, value))
    monkeypatch.setattr(progress, "show", lambda fig, caption: glued.__setitem__("figure", (fig, caption)))
    ch = {"training": training}  # what `chapter.setup` gives a chapter, for these results
    for family in ("gan", "vae", "diffusion"):
        summary = training.summary(f"curve_{family}")
        assert summary["curve"], family
        for row in summary["curve"]:
            assert 0 <= row["recognised_share"] <= 1 and math.isfinite(row["fid"])
            assert set(row["copies"]) >= {"l2", "nn_ratio", summary["headline"]} and row["epochs"] > 0
            assert row["train_hours"] is not None and row["train_hours"] >= 0
        progress.quality_curve(ch, [family])
        assert glued[f"quality_progress_{family}"].startswith("The ")
        figure, caption = glued["figure"]
        assert len(figure.data) == 3 and "samples from each kept checkpoint" in caption
        assert progress.training_sentence(ch, family).startswith("It was trained on all 60,000 training digits for")


def test_the_sampler_stage_exports_the_final_checkpoint_and_measures_the_rounding(smoke_results, tmp_path):
    training = results.load("training", "smoke", root=smoke_results)
    context = StageContext(
        dir=tmp_path,
        config={
            "experiment": "training",
            "from": "train_gan",
            "dtype": "float16",
            "check_n": 32,
            "seed": 4,
            "sampler": {},
        },
        scale="smoke",
        root=smoke_results,
        progress=False,
    )
    summary = sampler_stage(context)
    assert summary["from_step"] == training.stage("train_gan")["config"]["train"]["steps"]
    assert summary["ema_applied"] and summary["parameter_dtype"] == "float16"
    assert summary["stored_vs_full_precision"]["n"] == 32
    assert summary["stored_vs_full_precision"]["max_grey_levels"] <= 2


def test_the_solver_stage_measures_the_diffusion_model_at_each_step_count(smoke_results, monkeypatch):
    training = results.load("training", "smoke", root=smoke_results)
    record = training.stage("solver_diffusion")
    points = record["summary"]["points"]
    assert [[p["step"], p["solver_steps"]] for p in points] == record["config"]["points"]
    for point in points:
        assert 0 <= point["recognised_share"] <= 1 and math.isfinite(point["fid"]) and point["seconds"] >= 0
    # The curve and this stage draw the same seeds: a point at the curve's solver steps is the curve's row.
    curve = {r["step"]: r for r in training.summary("curve_diffusion")["curve"]}
    same = [p for p in points if p["solver_steps"] == training.sampler_steps("curve_diffusion") and p["step"] in curve]
    for point in same:
        assert point["fid"] == curve[point["step"]]["fid"]
    glued = {}
    monkeypatch.setattr(progress, "glue", lambda name, value: glued.__setitem__(name, value))
    main = results.load("main", "smoke", root=smoke_results)
    progress.glue_solver({"training": training, "main": main})
    assert glued["diffusion_solver"].startswith("Drawn from the final model on the same seeds")
    assert f"drawn with {main.sampler_steps('sample_diffusion')} steps" in glued["diffusion_solver"]
