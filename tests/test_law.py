"""Chapter 9 (copies in law): every legal test is answered by a measurement whose numbers are the committed
results' numbers, the chapter's prose quotes only what `law_views` glues, and the static control works in a
browser with no kernel and no outside request.

The unit tests read the committed results (`data/results`) and compare `law_views` with the manifests read
directly as JSON, so a change in how the module reads them, or in the results, fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mnistmem.book import law as law_views
from mnistmem.book.common import pct
from mnistmem.copies import HEADLINE

from .conftest import REPO, committed_results_complete

CHAPTER = REPO / "chapters" / "09_copies_in_law.md"
needs_results = pytest.mark.skipif(not committed_results_complete(), reason="no committed cpu/gpu results")


def manifest(experiment: str) -> dict:
    from mnistmem import results

    scale = results.choose_scale(experiment)
    return json.loads((REPO / "data" / "results" / scale / experiment / "manifest.json").read_text())


def stage_summary(experiment: str, stage: str) -> dict:
    return manifest(experiment)["stages"][stage]["summary"]


def criterion_row(criteria: list[dict], criterion: str) -> dict:
    return next(r for r in criteria if r["criterion"] == criterion)


@pytest.fixture(scope="module")
def ch():
    from mnistmem.book import chapter

    return chapter.setup(law_views.EXPERIMENTS, verbose=False)


def test_the_chapter_reads_the_experiments_the_module_needs():
    listed = re.search(r"chapter\.setup\((\[[^\]]*\])", CHAPTER.read_text()).group(1)
    assert sorted(json.loads(listed.replace("'", '"'))) == sorted(law_views.EXPERIMENTS)


def test_every_legal_test_has_a_measurement_and_a_question():
    keys = [t.key for t in law_views.LEGAL_TESTS]
    assert len(keys) == len(set(keys))
    for topic in ("us_copies", "us_fixation", "us_office", "uk_storage", "eu_reproduction", "eu_tdm", "gdpr"):
        assert topic in keys, f"legal test {topic} is not mapped"
    for test in law_views.LEGAL_TESTS:
        assert test.measurement in law_views.MEASUREMENTS
        assert test.question.endswith("?") and test.source


@needs_results
@pytest.mark.parametrize("criterion", law_views.DEFINITIONS)
def test_every_measurement_reads_numbers_and_says_them(ch, criterion):
    for test in law_views.LEGAL_TESTS:
        m = law_views.measure(ch, test, criterion)
        numbers = [v for v in m.numbers.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        assert numbers, f"{test.key}: no number read from the results"
        assert law_views.definition_name(criterion) in m.sentence
        words = [f"{v:,}" if isinstance(v, int) else pct(v) for v in numbers]
        said = [w for w in words if w in m.sentence]
        assert said, f"{test.key} / {criterion}: the sentence quotes none of its numbers: {m.sentence}"
        assert "<img" in m.gallery or "no image" in m.gallery


@needs_results
@pytest.mark.parametrize("criterion", law_views.DEFINITIONS)
def test_census_equals_the_score_records(ch, criterion):
    m = law_views.census(ch, criterion)
    for family in law_views.FULL_MODELS:
        row = criterion_row(stage_summary("main", f"score_{family}")["criteria"], criterion)
        assert m.numbers[f"full_{family}_count"] == row["count"]
        assert m.numbers[f"full_{family}_n"] == row["n"]
    own = stage_summary("small", f"score_{law_views.SMALL}")["against_own_training_set"]
    row = criterion_row(own["criteria"], criterion)
    assert (m.numbers["small_count"], m.numbers["small_n"]) == (row["count"], row["n"])
    assert m.numbers["small_false_alarm_rate"] == row["baseline_rate"]
    assert 0 < m.numbers["small_distinct_reproduced"] <= own["n_train"] or row["count"] == 0


@needs_results
def test_seed_counts_equal_the_randomness_record(ch):
    """Under the headline definition, the fixation measurement recounts what the randomness experiment recorded
    for the small model: distinct training images copied and those reproduced from two or more seeds."""
    m = law_views.fixation(ch, HEADLINE)
    record = next(r for r in stage_summary("randomness", "seeds")["models"] if r["model"] == law_views.SMALL)
    assert m.numbers["copies"] == record["copies"]
    assert m.numbers["distinct_reproduced"] == record["copied_training_images"]
    assert m.numbers["reproduced_by_several_seeds"] == record["reproduced_by_several_seeds"]
    assert m.numbers["most_seeds"] == max(record["seeds_per_copied_image"]["seeds"])
    regenerated = stage_summary("randomness", "regeneration")["models"]
    assert m.numbers["regenerated_identical"] == sum(r.get("identical", 0) for r in regenerated)


@needs_results
def test_sizes_equal_the_storage_record_and_the_data_file(ch):
    m = law_views.size(ch, HEADLINE)
    storage = {r["model"]: r for r in stage_summary("storage", "storage")["models"]}
    for family in law_views.FULL_MODELS:
        assert m.numbers[f"full_{family}_weights_bytes"] * 8 == storage[family]["weight_bits"]
        assert m.numbers[f"full_{family}_parameters"] == storage[family]["parameters"]
    # the sentence calls the diffusion model's weights numbers of 4 bytes: exactly so (no other buffers)
    assert m.numbers["full_diffusion_parameters"] * 32 == storage["diffusion"]["weight_bits"]
    with np.load(REPO / "data" / "mnist" / "train.npz") as archive:
        images = next(a for a in (archive[k] for k in archive.files) if a.ndim == 3)
    assert m.numbers["full_training_bytes"] == images.nbytes == images.shape[0] * 784
    assert m.numbers["full_diffusion_weights_bytes"] < m.numbers["full_training_bytes"]
    assert m.numbers["dose_diffusion_weights_bytes"] < m.numbers["dose_training_bytes"]
    train = stage_summary("dose", "train_diffusion")
    assert m.numbers["dose_training_images"] == train["training_images"]


@needs_results
@pytest.mark.parametrize("criterion", law_views.DEFINITIONS)
def test_canary_counts_equal_the_reproduction_records(ch, criterion):
    """The duplication measurement pools, per count, every canary of that count in every run of a family: the
    sums of the runs' own records, read directly."""
    m = law_views.duplication(ch, criterion)
    runs = {"diffusion": ("diffusion", "diffusion_b"), "gan": ("gan",)}
    for family, names in runs.items():
        pooled: dict[int, int] = {}
        for name in names:
            for row in stage_summary("dose", f"reproduction_{name}")["canaries"]:
                pooled[row["count"]] = pooled.get(row["count"], 0) + row["reproduced"][criterion]
        for count, hits in pooled.items():
            assert m.numbers[f"{family}_{count}"] == hits, (family, count)
        top = max(pooled)
        assert law_views.size(ch, criterion).numbers[f"dose_{family}_reproduced"] == pooled[top]


@needs_results
@pytest.mark.parametrize("criterion", law_views.DEFINITIONS)
def test_erasure_counts_equal_the_verdicts(ch, criterion):
    m = law_views.erasure(ch, criterion)
    judged = stage_summary("unlearning", "verdicts")["judged"]
    assert m.numbers["before"] == judged["choose"]["before"]["roles"]["canary"]["by_criterion"][criterion]["hits"]
    for method in ("retrain", "sisa", "finetune", "neggrad"):
        roles = judged[f"{method}_canary"]
        assert m.numbers[f"{method}_after"] == roles["after"]["roles"]["forgotten"]["by_criterion"][criterion]["hits"]
        assert (
            m.numbers[f"{method}_relearned"]
            == (roles["relearned"]["roles"]["forgotten"]["by_criterion"][criterion]["hits"])
        )
    assert bracket_depth(m.sentence) <= 1, m.sentence  # no aside inside an aside


def bracket_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


@needs_results
def test_erasure_under_the_headline_matches_chapter_8(ch):
    from mnistmem.book import unlearning as unlearning_views

    m = law_views.erasure(ch, HEADLINE)
    assert m.numbers["before"] == unlearning_views.before_forgetting(ch["unlearning"])["canary"]["hits"]
    rows = {r["method"]: r for r in unlearning_views.method_rows(ch["unlearning"]) if r["target"] == "canary"}
    assert m.numbers["finetune_after"] == rows["finetune"]["forgotten"]["hits"]


@needs_results
@pytest.mark.parametrize("criterion", ["nn_ratio", HEADLINE])
def test_patterns_equal_the_onset_records(ch, criterion):
    """The patterns measurement quotes each onset diffusion run's last grid row (judged against its own digits)
    and the small model's C_T from its score record."""
    m = law_views.patterns(ch, criterion)
    stages = manifest("onset")["stages"]
    runs = [r["summary"] for k, r in stages.items() if k.startswith("grid_diffusion_") and not k.endswith("_b")]
    assert len(runs) >= 5
    for run in runs:
        row = run["curve"][-1]["criteria"][criterion]
        assert m.numbers[f"diffusion_{run['n']}_rate"] == row["rate"]
        assert f"{run['n']:,} digits {pct(row['rate'])}" in m.sentence
    small = stage_summary("small", f"score_{law_views.SMALL}")
    assert m.numbers["small_c_t"] == small["against_own_training_set"]["c_t"]


@needs_results
def test_reconstruction_rows_follow_the_records(ch):
    rows = {r["criterion"]: r for r in law_views.reconstructed(ch)}
    assert set(rows) == set(law_views.DEFINITIONS)
    own = stage_summary("small", f"score_{law_views.SMALL}")["against_own_training_set"]
    for name, r in rows.items():
        assert r["samples"] == criterion_row(own["criteria"], name)["count"]
        assert r["false_alarm_rate"] == criterion_row(own["criteria"], name)["baseline_rate"]
        assert r["distinct"] == law_views.census(ch, name).numbers["small_distinct_reproduced"]


@needs_results
def test_every_glue_name_in_the_chapter_is_glued(ch, monkeypatch):
    glued: dict[str, object] = {}
    monkeypatch.setattr(law_views, "glue", lambda name, value: glued.__setitem__(name, value))
    law_views.glue_numbers(ch)
    monkeypatch.setattr(law_views, "show_html", lambda fragment: None)
    law_views.reconstruction_table(ch)
    used = set(re.findall(r"\{glue:text\}`([^`]+)`", CHAPTER.read_text()))
    assert used, "the chapter quotes no glued number"
    assert used <= set(glued), f"glued nowhere: {sorted(used - set(glued))}"
    assert all(str(glued[name]).strip() for name in used)


@needs_results
def test_the_control_carries_every_view_and_nothing_from_outside(ch):
    state = law_views.explorer_state(ch)
    for test in state["tests"]:
        for definition in state["definitions"]:
            assert f"{test['measurement']}|{definition['key']}" in state["views"]
    page = law_views.explorer_html(state, "caption")
    data = re.search(r"<script type='application/json' id='mnistmem-law-data'>(.*?)</script>", page, re.S).group(1)
    assert json.loads(data)["views"].keys() == state["views"].keys()
    assert not re.search(r"(src|href)=['\"]https?://", page), "the control loads something from outside"
    assert len(page) < 2 * 1024 * 1024


# ------------------------------------------------------------------------------------------ in a browser
@pytest.mark.browser
@pytest.mark.book
def test_the_chapter_renders_and_its_control_switches_the_view(built_book: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    from .browser import CHROMIUM, CHROMIUM_ARGS, PageLog, serve

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install it with `apt-get install chromium`")
    shots = built_book.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    with serve(built_book) as base_url, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width in (1280, 390):
            page = browser.new_page(viewport={"width": width, "height": 900})
            log = PageLog(base_url)
            log.attach(page)
            page.goto(f"{base_url}/chapters/09_copies_in_law.html", wait_until="load")
            page.wait_for_timeout(300)
            assert "Copies in law" in page.locator("h1").first.text_content()
            assert page.locator("table.mnistmem-table").count() >= 1, "the reconstruction table is missing"
            body = page.locator("article, main").first.text_content()
            assert "Getty" in body and "GEMA" in body and "§ 101" in body
            control = page.locator("#mnistmem-law-explorer")
            control.scroll_into_view_if_needed()

            def answer(control=control):
                return control.locator(".law-answer").text_content()

            def gallery(control=control):
                return control.locator(".law-gallery img").first.get_attribute("src")

            first_answer, first_gallery = answer(), gallery()
            assert first_answer and first_gallery.startswith("data:image/png")
            control.locator("select[name=definition]").select_option("l2")
            page.wait_for_timeout(100)
            by_pixels = answer()
            assert by_pixels != first_answer and "pixel distance" in by_pixels, "the definition did not switch"
            control.locator("select[name=test]").select_option("gdpr")
            page.wait_for_timeout(100)
            assert answer() != by_pixels and gallery() != first_gallery, "the legal test did not switch the view"
            assert "GDPR" in control.locator(".law-source").text_content()
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width + 1, f"the page scrolls sideways at {width} px ({wide} px wide)"
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(200)
            page.screenshot(path=str(shots / f"chapters_09_copies_in_law_{width}.png"), full_page=True)
            assert log.errors == [], f"console errors {log.errors}"
            assert log.outside == [], f"requests leaving the machine {log.outside}"
            assert log.failed == [], f"failed requests {log.failed}"
            page.close()
        browser.close()


@needs_results
def test_the_getty_premise_verdict_follows_every_score_record(ch):
    beyond = [
        (family, r["criterion"])
        for family in law_views.FULL_MODELS
        for r in stage_summary("main", f"score_{family}")["criteria"]
        if r["criterion"] in law_views.DEFINITIONS and r["excess_ci_low"] > 0
    ]
    verdict = law_views.full_verdict(ch)
    assert verdict.startswith("under none") == (not beyond), verdict


def test_reconstructed_sentence_lists_only_definitions_without_false_alarms():
    rows = [
        {
            "criterion": "l2",
            "samples": 39,
            "n": 2000,
            "distinct": 20,
            "false_alarm_rate": 0.0,
            "false_alarm_ci_high": 4e-4,
        },
        {
            "criterion": HEADLINE,
            "samples": 9,
            "n": 2000,
            "distinct": 9,
            "false_alarm_rate": 0.26,
            "false_alarm_ci_high": 0.3,
        },
        {
            "criterion": "ssim",
            "samples": 0,
            "n": 2000,
            "distinct": 0,
            "false_alarm_rate": 0.0,
            "false_alarm_ci_high": 4e-4,
        },
    ]
    text = law_views.reconstructed_sentence(rows, 100)
    assert "39 by the pixel distance (20 different training digits)" in text
    assert law_views.definition_name(HEADLINE) not in text and "structural" not in text
    assert "This definition calls no single test digit a copy" in text
    assert "no test digit" in law_views.reconstructed_sentence(rows[1:2], 100)
