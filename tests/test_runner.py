"""The experiment runner: stages skip when done, resume after a kill, rerun only what changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mnistmem import results
from mnistmem.experiments.runner import Experiment, Stage, run_experiment


def make_experiment(calls: list[str], sizes=(3, 5), fail_at: str | None = None) -> Experiment:
    def produce(ctx):
        calls.append("produce")
        np.savez(ctx.dir / "numbers.npz", x=np.arange(ctx.config["n"]))
        return {"n": ctx.config["n"]}

    def square(ctx):
        calls.append("square")
        if fail_at == "square":
            raise RuntimeError("killed")
        x = np.load(ctx.input("produce") / "numbers.npz")["x"]
        np.savez(ctx.dir / "squares.npz", y=x**2)
        return {"total": int((x**2).sum()), "seen_n": ctx.summaries["produce"]["n"]}

    def note(ctx):
        calls.append("note")
        (ctx.dir / "note.txt").write_text(ctx.config["text"])
        return {}

    def plan(scale):
        return [
            Stage("produce", {"n": sizes[0] if scale == "smoke" else sizes[1]}, produce),
            Stage("square", {"power": 2}, square, after=("produce",)),
            Stage("note", {"text": "hello"}, note),
        ]

    return Experiment(name="toy", question="Does squaring work?", plan=plan)


def test_stages_run_once_and_are_skipped_when_done(tmp_path):
    calls: list[str] = []
    manifest = run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None)
    assert calls == ["produce", "square", "note"]
    assert manifest["stages"]["square"]["summary"] == {"total": 0 + 1 + 4, "seen_n": 3}
    run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None)
    assert calls == ["produce", "square", "note"], "a finished stage ran again"


def test_manifest_is_complete(tmp_path):
    manifest = run_experiment(make_experiment([]), "smoke", root=tmp_path, log=lambda _: None)
    on_disk = json.loads((tmp_path / "smoke" / "toy" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    for key in ("experiment", "question", "scale", "code", "packages", "hardware", "run_started", "run_finished"):
        assert on_disk[key] not in (None, {}, ""), key
    assert on_disk["packages"]["torch"] and on_disk["packages"]["numpy"]
    assert on_disk["hardware"]["device_type"] == "cpu"
    for record in on_disk["stages"].values():
        assert {"config", "hash", "summary", "wall_seconds", "finished", "folder"} <= set(record)
    assert on_disk["wall_seconds_total"] == pytest.approx(sum(r["wall_seconds"] for r in on_disk["stages"].values()))


def test_a_failed_stage_resumes_where_it_stopped(tmp_path):
    calls: list[str] = []
    with pytest.raises(RuntimeError, match="killed"):
        run_experiment(make_experiment(calls, fail_at="square"), "smoke", root=tmp_path, log=lambda _: None)
    assert calls == ["produce", "square"]
    calls.clear()
    run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None)
    assert calls == ["square", "note"]


def test_a_changed_config_reruns_its_stage_and_dependents_only(tmp_path):
    calls: list[str] = []
    run_experiment(make_experiment(calls, sizes=(3, 5)), "smoke", root=tmp_path, log=lambda _: None)
    calls.clear()
    manifest = run_experiment(make_experiment(calls, sizes=(4, 5)), "smoke", root=tmp_path, log=lambda _: None)
    assert calls == ["produce", "square"]
    assert manifest["stages"]["square"]["summary"]["total"] == 0 + 1 + 4 + 9
    folders = sorted(p.name for p in (tmp_path / "smoke" / "toy").iterdir() if p.is_dir())
    assert len(folders) == 3, f"stale stage folders were not pruned: {folders}"


KILLABLE = textwrap.dedent(
    """
    import sys, time, numpy as np
    from pathlib import Path
    from mnistmem.experiments.runner import Experiment, Stage, run_experiment

    def slow(ctx):
        # a stage that resumes inside itself: one file per finished chunk
        for chunk in range(6):
            part = ctx.scratch / f"chunk{chunk}.npy"
            if part.exists():
                continue
            print(f"chunk {chunk}", flush=True)
            time.sleep(0.4)
            np.save(part, np.full(3, chunk))
        return {"chunks": sorted(p.name for p in ctx.scratch.iterdir())}

    def plan(scale):
        return [Stage("slow", {"chunks": 6}, slow), Stage("after", {}, lambda ctx: {"ok": True}, after=("slow",))]

    run_experiment(Experiment("killable", "?", plan), "smoke", root=Path(sys.argv[1]), log=print)
    """
)


def test_resume_after_sigkill_inside_a_stage(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLABLE)
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "res")], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("chunk 3"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "res")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    redone = [line for line in result.stdout.splitlines() if line.startswith("chunk")]
    assert redone and redone[0] in ("chunk 2", "chunk 3"), f"resumed at {redone}, not where it was killed"
    manifest = json.loads((tmp_path / "res" / "smoke" / "killable" / "manifest.json").read_text())
    assert manifest["stages"]["slow"]["summary"]["chunks"] == [f"chunk{i}.npy" for i in range(6)]
    assert manifest["stages"]["after"]["summary"] == {"ok": True}


# ------------------------------------------------------------------------------------------------ reading
def test_results_load_reads_files_and_names_the_command_when_missing(tmp_path):
    run_experiment(make_experiment([]), "cpu", root=tmp_path, log=lambda _: None)
    result = results.load("toy", root=tmp_path)
    assert result.scale == "cpu"
    assert result.arrays("square", "squares.npz")["y"].tolist() == [0, 1, 4, 9, 16]
    with pytest.raises(results.ResultError, match="mnistmem reproduce --scale cpu --only toy"):
        result.path("square", "missing.npz")
    with pytest.raises(results.ResultError, match="mnistmem reproduce --scale smoke --only toy"):
        results.load("toy", scale="smoke", root=tmp_path)
    with pytest.raises(results.ResultError, match="mnistmem reproduce --scale smoke --only other"):
        results.load("other", root=tmp_path)


def test_largest_scale_wins_unless_one_is_asked_for(tmp_path, monkeypatch):
    run_experiment(make_experiment([]), "smoke", root=tmp_path, log=lambda _: None)
    run_experiment(make_experiment([]), "cpu", root=tmp_path, log=lambda _: None)
    assert results.load("toy", root=tmp_path).scale == "cpu"
    monkeypatch.setenv(results.SCALE_ENV, "smoke")
    assert results.load("toy", root=tmp_path).scale == "smoke"


def test_wrong_schema_or_corrupt_files_fail_clearly(tmp_path):
    run_experiment(make_experiment([]), "smoke", root=tmp_path, log=lambda _: None)
    manifest_path = tmp_path / "smoke" / "toy" / "manifest.json"
    result = results.load("toy", root=tmp_path)
    result.path("square", "squares.npz").write_bytes(b"not a zip file")
    with pytest.raises(results.ResultError, match="corrupt"):
        result.arrays("square", "squares.npz")
    manifest = json.loads(manifest_path.read_text())
    manifest["schema"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(results.ResultError, match="schema 999"):
        results.load("toy", root=tmp_path)
    manifest_path.write_text("{ truncated")
    with pytest.raises(results.ResultError, match="not valid JSON"):
        results.load("toy", root=tmp_path)


def test_training_features_are_cached_on_disk_by_exact_hashes(tmp_path, monkeypatch):
    """The classifier features of the training images are reused across processes, and a different image
    set (or a corrupted cache file) never returns stale features."""
    from mnistmem import data
    from mnistmem.experiments import stages
    from mnistmem.models import classifier

    train = data.load_mnist("train")[0][:300]
    monkeypatch.setenv("MNISTMEM_DATA", str(tmp_path))
    model = classifier.load_pretrained()
    path = stages.feature_cache_path(model, train)
    assert str(path).startswith(str(tmp_path)) and not path.exists()
    first = stages._cached_on_disk(model, model.features, train)
    assert path.exists()
    np.testing.assert_array_equal(np.load(path), first)
    np.testing.assert_array_equal(stages._cached_on_disk(model, model.features, train), model.features(train))
    other = train.copy()
    other[0, 0, 0] ^= 1  # one bit changed: another cache file
    assert stages.feature_cache_path(model, other) != path
    path.write_bytes(b"truncated")  # a broken cache is recomputed, not trusted
    np.testing.assert_array_equal(stages._cached_on_disk(model, model.features, train), first)
    flipped = bytearray(path.read_bytes())  # one flipped bit inside the floats: shape and finiteness still pass
    flipped[-5] ^= 0x01
    path.write_bytes(bytes(flipped))
    assert not np.array_equal(np.load(path), first)
    np.testing.assert_array_equal(stages._cached_on_disk(model, model.features, train), first)
    np.testing.assert_array_equal(np.load(path), first)  # and the cache file is mended


def test_selected_stages_run_alone_and_the_manifest_waits_for_the_whole_plan(tmp_path):
    """`only` runs just the named stages; a stage that reads an unfinished one is refused; the manifest is
    written (and stale folders pruned) only once every stage of the plan is finished."""
    calls = []
    experiment = make_experiment(calls)
    manifest_path = tmp_path / "smoke" / "toy" / "manifest.json"
    with pytest.raises(ValueError, match="reads \\['produce'\\], which are not finished"):
        run_experiment(experiment, "smoke", root=tmp_path, log=lambda _: None, only={"square"})
    with pytest.raises(ValueError, match="no stage"):
        run_experiment(experiment, "smoke", root=tmp_path, log=lambda _: None, only={"nonexistent"})
    assert run_experiment(experiment, "smoke", root=tmp_path, log=lambda _: None, only={"produce"}) is None
    assert calls == ["produce"] and not manifest_path.exists()
    assert run_experiment(experiment, "smoke", root=tmp_path, log=lambda _: None, only={"square"}) is None
    assert calls == ["produce", "square"] and not manifest_path.exists()
    manifest = run_experiment(experiment, "smoke", root=tmp_path, log=lambda _: None)
    assert calls == ["produce", "square", "note"] and set(manifest["stages"]) == {"produce", "square", "note"}
    assert all("cpu" in record["hardware"] for record in manifest["stages"].values())  # each stage's machine


def test_reproduce_with_a_time_budget_says_paused_and_exits_3(monkeypatch, capsys):
    import argparse

    from mnistmem.commands import reproduce
    from mnistmem.training import TrainingPaused

    parser = argparse.ArgumentParser()
    reproduce.add_arguments(parser)

    def paused(*args, **kwargs):
        assert kwargs["deadline"] is not None and kwargs["only"] == {"train_gan"}
        raise TrainingPaused(Path("run"), 40, 100)

    monkeypatch.setattr(reproduce.experiments, "run_experiment", paused)
    args = parser.parse_args(["--scale", "cpu", "--only", "main", "--stages", "train_gan", "--minutes", "85"])
    assert reproduce.run(args) == 3
    assert "paused at step 40 of 100" in capsys.readouterr().out
    for bad in (
        ["--stages", "x"],
        ["--only", "main", "--minutes", "0"],
        ["--only", "main", "--minutes", "5", "--jobs", "2"],
    ):
        assert reproduce.run(parser.parse_args(bad)) == 2


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it(tmp_path):
    import fcntl

    from mnistmem.experiments.runner import ExperimentBusyError

    folder = tmp_path / "smoke" / "toy"
    folder.mkdir(parents=True)
    with open(folder / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a first run would
        with pytest.raises(ExperimentBusyError, match="being written by another run"):
            run_experiment(make_experiment([]), "smoke", root=tmp_path, log=lambda _: None)
    calls = []
    run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None)  # free again
    assert calls == ["produce", "square", "note"]


def test_rerun_runs_finished_stages_again_in_place_and_nothing_else(tmp_path):
    """`--rerun 'squ*'`: the matching finished stage runs again under the same hash (so its dependents stay
    valid), the manifest is rewritten, other stages are not touched; a pattern that matches nothing is refused."""
    from mnistmem.experiments.runner import PlanError

    calls: list[str] = []
    first = run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None)
    calls.clear()
    again = run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None, rerun=("squ*",))
    assert calls == ["square"]
    assert again["stages"]["square"]["hash"] == first["stages"]["square"]["hash"]
    assert again["stages"]["square"]["finished"] >= first["stages"]["square"]["finished"]
    assert again["stages"]["produce"]["finished"] == first["stages"]["produce"]["finished"]
    assert results.load("toy", "smoke", root=tmp_path).summary("square")["total"] == 5
    with pytest.raises(PlanError, match="matches no stage"):
        run_experiment(make_experiment(calls), "smoke", root=tmp_path, log=lambda _: None, rerun=("train_*",))


def test_a_killed_write_leaves_no_temporary_file_behind_after_the_next_run(tmp_path):
    """A process killed inside an atomic write leaves `.name.XXXX.tmp`; the next run of the folder, holding its
    lock, removes every such file (a stray file in a finished stage's folder would make it unverifiable)."""
    from mnistmem.atomic import exclusive

    stray = [tmp_path / ".table.npz.a1b2.tmp", tmp_path / "stage-1" / ".samples.npz.c3d4.tmp"]
    for path in stray:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    (tmp_path / "stage-1" / "table.npz").write_bytes(b"a finished file")
    with exclusive(tmp_path, lambda: RuntimeError("busy")):
        assert not any(path.exists() for path in stray)
        assert (tmp_path / "stage-1" / "table.npz").exists()
        with pytest.raises(RuntimeError, match="busy"):  # and a second writer is refused, not let in
            with exclusive(tmp_path, lambda: RuntimeError("busy")):
                pass


def test_every_committed_result_was_made_by_this_code_s_plan():
    """A committed manifest's stage hashes are those the current plan gives (config and parents): results made
    by an older configuration, or by code whose stage configs changed since, cannot pass for current ones."""
    from mnistmem.experiments import REGISTRY, get
    from mnistmem.experiments.runner import planned_hashes
    from mnistmem.paths import repo_root

    root = repo_root() / "data" / "results"
    checked = 0
    for manifest_path in sorted(root.glob("*/*/manifest.json")):
        scale, name = manifest_path.parent.parent.name, manifest_path.parent.name
        assert name in REGISTRY, f"{manifest_path}: no experiment {name!r} in the registry"
        recorded = {stage: record["hash"] for stage, record in json.loads(manifest_path.read_text())["stages"].items()}
        assert recorded == planned_hashes(get(name), scale, root), (
            f"{manifest_path} was made by another plan; rerun: mnistmem reproduce --scale {scale} --only {name}"
        )
        checked += 1
    assert checked >= 5


def test_a_stage_paused_at_its_time_budget_records_the_time_of_every_sitting(tmp_path):
    """`--minutes` sittings: the finished record's wall time is the sum over the paused sittings and the last."""
    import time

    from mnistmem.training import TrainingPaused

    def slow(ctx):
        marker = ctx.scratch / "sat-once"
        time.sleep(0.3)
        if not marker.exists():
            marker.write_text("")
            raise TrainingPaused(ctx.dir, 1, 2)
        return {}

    toy = Experiment(name="slow", question="?", plan=lambda scale: [Stage("slow", {}, slow)])
    with pytest.raises(TrainingPaused):
        run_experiment(toy, "smoke", root=tmp_path, log=lambda _: None)
    record = run_experiment(toy, "smoke", root=tmp_path, log=lambda _: None)["stages"]["slow"]
    assert record["sittings"] == 2
    assert record["wall_seconds"] >= 0.6, "the paused sitting's time was not counted"
    folder = tmp_path / "smoke" / "slow" / f"slow-{record['hash']}"
    (folder / "scratch" / "sittings.json").write_text('{"a": 1}')  # an altered ledger is refused, not dropped
    (folder / "stage.json").unlink()  # run the stage again
    with pytest.raises(results.ResultError, match=r"sittings\.json is not a list"):
        run_experiment(toy, "smoke", root=tmp_path, log=lambda _: None)


def test_the_book_names_the_commits_behind_an_experiment_and_says_where_none_was_recorded():
    from mnistmem.book.summary import code_text

    def manifest(*codes):
        stages = {f"s{i}": {"finished": f"2026-12-0{i + 1}", "code": code} for i, code in enumerate(codes)}
        return {"stages": stages}

    a, b = {"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": True}
    unknown = {"commit": None, "dirty": None}
    assert code_text(manifest(a, a)) == "a" * 10
    assert code_text(manifest(a, b)) == f"2 commits, the last {'b' * 10} (with uncommitted changes)"
    assert code_text(manifest(a, unknown)) == f"{'a' * 10} (not recorded for 1 of 2 stages)"
    assert code_text(manifest(unknown, {})) == "not recorded"


def test_a_run_in_this_checkout_records_its_commit():
    import re

    from mnistmem import provenance

    code = provenance.code_commit()
    assert re.fullmatch(r"[0-9a-f]{40}", code["commit"] or ""), code
    assert isinstance(code["dirty"], bool)
