"""The book's extraction section (issue 22): every glued number is the one in the results, the sentences say
"none" where nothing was found and read the positive controls right (hand-made summaries), and the section's
code cells run on smoke results with every value its prose quotes glued."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mnistmem.book import extraction as book
from mnistmem.book.common import pct

REPO = Path(__file__).resolve().parent.parent
DRAFT = REPO / "book" / "drafts" / "extraction_section.md"  # a draft, while its results are being computed
CHAPTER = REPO / "chapters" / "07_where_is_the_copy.md"
HEADING = "## Getting a training image out of the model"

INFOS = {
    "diffusion": book.describe_regime("diffusion", 60_000),
    "gan": book.describe_regime("gan", 60_000),
    "diffusion_100": book.describe_regime("diffusion", 100),
    "canaries": book.describe_regime("diffusion", 10_000, [1000, 100, 10, 1]),
}


def row(prompts: str, mask: str, retrieved: int, n: int = 200) -> dict:
    from mnistmem.stats import wilson_interval

    low, high = wilson_interval(retrieved, n)
    return {
        "prompts": prompts,
        "mask": mask,
        "n": n,
        "retrieved": retrieved,
        "share": retrieved / n,
        "ci_low": low,
        "ci_high": high,
        "median_hidden_distance": 5.0,
        "best_hidden_distance": 1.0,
    }


def completion_rows(training: int, test: int, canaries: int | None = None) -> list[dict]:
    rows = []
    for mask in ("top", "left", "centre"):
        rows += [row("training", mask, training), row("test", mask, test)]
        if canaries is not None:
            rows.append(row("canaries", mask, canaries, n=4))
    return rows


def membership(auc: float, low: float, high: float, tpr: float = 0.0, ranks=None) -> dict:
    out = {"auc": auc, "auc_low": low, "auc_high": high, "tpr_at_1pct_fpr": tpr, "members": 200, "outsiders": 200}
    if ranks is not None:
        out["canary_loss_percentile"] = ranks
    return out


def blind(copied: int, distances: list[float], named: int = 0, n: int = 4000) -> dict:
    candidates = [{"size": 5, "medoid": i, "nearest": i, "distance": d} for i, d in enumerate(distances)]
    hits = sum(d <= 1.0 for d in distances)
    return {
        "n": n,
        "bar": 1.0,
        "candidates": candidates,
        "precision": hits / len(candidates) if candidates else None,
        "copied_by_exact_search": copied,
        "recall": named / copied if copied else None,
        "hits": hits,
        "named": named,
    }


def label_summary(digits: int, per_label: list[int], free: int, n: int = 500) -> dict:
    from mnistmem.stats import wilson_interval

    rows = []
    for label, copies in [*enumerate(per_label), (None, free)]:
        size = n * (10 if label is None else 1)
        low, high = wilson_interval(copies, size)
        rows.append(
            {
                "label": label,
                "n": size,
                "copies": copies,
                "share": copies / size,
                "ci_low": low,
                "ci_high": high,
                "distinct_copied": min(copies, 3),
                "nearest_has_label": None if label is None else 0.9,
            }
        )
    return {"criterion": "nn_ratio", "training_digits": digits, "rows": rows}


# --------------------------------------------------------------------------------------------- sentences


def test_the_completion_sentence_says_none_when_nothing_came_back_anywhere():
    zeros = {r: completion_rows(0, 0, 0 if r == "canaries" else None) for r in INFOS}
    text = book.completion_sentence(zeros, INFOS)
    assert text.startswith("Shown the top half of a digit, the diffusion model trained on all 60,000 digits")
    assert "completed none of 200 training digits to the original and none of 200 digits it never saw" in text
    assert "and none of 4 canaries" in text
    assert "For no model did a partial training digit come back" in text and "beyond the control" not in text
    assert "%" not in text  # no share quoted where the count is zero


def test_the_completion_sentence_names_the_models_that_beat_the_control_and_those_that_did_not():
    rows = {
        "diffusion": completion_rows(2, 1),
        "gan": completion_rows(0, 0),
        "diffusion_100": completion_rows(120, 3),
        "canaries": completion_rows(0, 0, canaries=3),
    }
    text = book.completion_sentence(rows, INFOS)
    assert "the diffusion model trained on 100 digits completed 120 of 200 training digits" in text
    assert "more often than the control, at 95% confidence, for the diffusion model trained on 100 digits;" in text
    assert "for the diffusion model trained on all 60,000 digits, the GAN" in text and "did no better" in text
    assert "Planted canaries came back from part of themselves" in text
    # 2 of 200 against 1 of 200 is no evidence: the 60,000-digit model is not among the winners
    assert "control, at 95% confidence, for the diffusion model trained on all" not in text


def test_the_law_sentence_quotes_both_models_and_says_none_for_zero():
    rows = {"diffusion": completion_rows(0, 0), "diffusion_100": completion_rows(114, 2)}
    text = book.law_sentence(rows, INFOS)
    assert text.startswith(
        "Given the top half of a training digit, the diffusion model trained on 100 digits completed it to the "
        f"original in {pct(114 / 200)} of 200 tries"
    )
    assert f"for digits it never saw, in {pct(2 / 200)} of 200 tries" in text
    assert (
        "For the diffusion model trained on all 60,000 digits, the same test completed none of 200 training digits "
        "to the original and none of 200 digits never seen (it at most" in text
    )
    # a model that retrieved something keeps its own sentence; those that retrieved nothing share one
    rows["diffusion_3200"] = completion_rows(3, 0)
    infos = {**INFOS, "diffusion_3200": book.describe_regime("diffusion", 3200)}
    text = book.law_sentence(rows, infos)
    assert f"For the diffusion model trained on 3,200 digits, the same test gave {pct(3 / 200)} of 200 tries" in text
    rows["diffusion_3200"] = completion_rows(0, 0)
    text = book.law_sentence(rows, infos)
    assert "For the diffusion model trained on 3,200 digits and the diffusion model trained on all 60,000" in text
    assert "(each at most" in text


def test_the_membership_sentence_separates_signal_from_chance_and_ranks_the_canaries():
    text = book.membership_sentence(
        {
            "diffusion": membership(0.51, 0.45, 0.57),
            "diffusion_100": membership(0.93, 0.90, 0.96, tpr=0.41),
            "canaries": membership(0.55, 0.49, 0.6, ranks=[0.0, 0.02, 0.3, 0.5]),
        },
        INFOS,
    )
    assert text.startswith("The model's own loss tells its training digits from digits it never saw better than")
    assert "for the diffusion model trained on 100 digits (AUC 0.93, 95% interval 0.90 to 0.96; at 1% false" in text
    assert "picks out 41.00% of the training digits" in text
    assert "no better than chance for the diffusion model trained on all 60,000 digits (AUC 0.51" in text
    assert "intervals that include 0.5" in text
    assert "between 0.00% and 50.00% had a lower loss than a planted canary" in text
    assert "the clearest was planted 1,000 times" in text  # the first canary prompt is the spec's last
    none = book.membership_sentence({"gan": membership(0.5, 0.44, 0.56)}, INFOS)
    assert none.startswith("For no model does its own loss tell") and "an interval that includes 0.5" in none


def test_the_blind_sentence_reads_the_60000_digit_result_only_through_the_positive_controls():
    full = {"diffusion": blind(0, []), "gan": blind(0, [])}
    fired = book.blind_sentence({"diffusion_100": blind(40, [0.2, 0.5, 3.0], named=2), **full}, INFOS)
    assert "the exact search finds 40 distinct training images copied; the attack returned 2 of 3 candidates" in fired
    assert "named 2 of 40 of them" in fired
    assert "the attack returned no candidate (the exact search finds no training image copied)" in fired
    assert "Because the attack finds copies where they exist, its finding nothing on the models trained on all " in (
        fired
    )
    blind_even_there = book.blind_sentence({"diffusion_100": blind(40, [3.0, 4.0]), **full}, INFOS)
    assert "returned none of 2 candidates real training images" in blind_even_there
    assert "named none of 40" in blind_even_there and "says nothing about them" in blind_even_there
    void = book.blind_sentence({"diffusion_100": blind(0, []), "canaries": blind(0, []), **full}, INFOS)
    assert "so there was nothing for the attack to find" in void
    assert "Neither positive control gave the attack a copy to find" in void and "means nothing yet" in void
    found = book.blind_sentence({"diffusion_100": blind(5, [0.1], named=1), "diffusion": blind(1, [0.3])}, INFOS)
    assert "it took 1 real training image out of the models trained on all 60,000 digits" in found


class Results:
    """Just enough of `mnistmem.results` for the book's readers: a manifest naming the stages, and summaries."""

    scale = "smoke"

    def __init__(self, summaries: dict[str, dict]):
        self.summaries = summaries
        self.manifest = {"stages": {name: {} for name in summaries}}

    def summary(self, stage: str) -> dict:
        return self.summaries[stage]


def law_results(completed: dict[str, tuple[int, int]], aucs: dict[str, tuple[float, float, float]], blinds) -> Results:
    digits = {"diffusion_100": 100, "diffusion_3200": 3200, "diffusion": 60_000}
    summaries = {}
    for regime, (training, test) in completed.items():
        summaries[f"completion_{regime}"] = {
            "rows": completion_rows(training, test),
            "training_digits": digits[regime],
            "canaries": [],
        }
        summaries[f"membership_{regime}"] = membership(*aucs[regime])
        summaries[f"blind_{regime}"] = blinds[regime]
    return Results(summaries)


def test_the_law_sentence_says_which_models_give_their_digits_away_and_the_table_shows_every_number(monkeypatch):
    results = law_results(
        {"diffusion_100": (56, 0), "diffusion_3200": (0, 0), "diffusion": (0, 0)},
        {"diffusion_100": (1.0, 1.0, 1.0), "diffusion_3200": (0.55, 0.49, 0.60), "diffusion": (0.5, 0.45, 0.56)},
        {"diffusion_100": blind(100, [0.2] * 50, named=50), "diffusion_3200": blind(0, []), "diffusion": blind(0, [])},
    )
    text = book.law_extraction_sentence(results)
    assert text.startswith(
        "Given the top half of a training digit, only the diffusion model trained on 100 digits completed it to "
        "the original more often than it completed digits it never saw."
    )
    assert "better than a coin toss only for the diffusion model trained on 100 digits." in text
    assert text.endswith("too rare for a blind search of this size to meet.")

    # nothing beyond the control anywhere: said as "none", not as an empty list
    none = law_results(
        {"diffusion_100": (1, 0), "diffusion": (0, 0)},
        {"diffusion_100": (0.6, 0.45, 0.7), "diffusion": (0.5, 0.45, 0.56)},
        {"diffusion_100": blind(0, []), "diffusion": blind(0, [])},
    )
    text = book.law_extraction_sentence(none)
    assert "no model in the table completed it to the original" in text
    assert "For no model in the table did its own loss tell" in text
    assert "void" in text

    shown = []
    monkeypatch.setattr(book, "show_html", shown.append)
    book.law_extraction_table({"extraction": results})
    (table,) = shown
    assert table.count("<tr>") == 4  # the heading and one row per model
    assert "56 of 200: 28.00%" in table and "none of 200 (at most 1.88%)" in table
    assert "0.55 (95% interval 0.49 to 0.60)" in table
    assert "50 of 50 candidates real; 100 training images copied in 4,000 samples" in table
    assert "no candidate; no training image copied in 4,000 samples" in table


def test_the_label_sentence_says_none_and_compares_asking_with_not_asking():
    zeros = book.label_sentence({100: label_summary(100, [0] * 10, 0, n=16)})
    assert zeros == (
        "The class-conditional diffusion model trained on 100 digits copied none of its 160 samples asked for a "
        "digit, nor any of 160 asked for none."
    )
    text = book.label_sentence(
        {
            100: label_summary(100, [250, 300, 260, 200, 240, 280, 270, 250, 230, 290], 2600),
            3200: label_summary(3200, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 0),
        }
    )
    assert text.startswith("Asked for each digit in turn, the class-conditional diffusion model trained on 100 digits")
    assert f"in {pct(0.4)} to {pct(0.6)} of its samples (most for a 1:" in text
    assert "made no clear difference" in text
    assert "trained on 3,200 digits copied a training digit in 0.00% to 0.20% of its samples (most for a 9:" in text


def test_canary_prompts_are_named_in_the_order_the_experiment_holds_them():
    """The experiment's canary prompts (and the membership stage's percentiles) run by source id ascending, canary
    k being source -(k + 1); the summary's `canaries` must name them in that order, which the built set confirms."""
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.extraction import _training_facts

    spec = {"n": 50, "seed": 0, "canaries": [{"glyph": f"stroke:{k}", "count": c} for k, c in enumerate([1, 3, 5])]}
    built = DataSpec.from_dict(spec).build()
    sources = sorted(set(built.sources[built.sources < 0]))
    facts = _training_facts(spec)
    assert [c["count"] for c in facts["canaries"]] == [int((built.sources == s).sum()) for s in sources] == [5, 3, 1]
    assert [c["glyph"] for c in facts["canaries"]] == [f"stroke:{-s - 1}" for s in sources]
    assert facts["training_digits"] == 50


# --------------------------------------------------------------------------------------------- on smoke results


@pytest.fixture(scope="module")
def shown_and_glued(smoke_results):
    """Every view of the section run once on the smoke results: what was shown and what was glued."""
    from mnistmem import results
    from mnistmem.book.chapter import Chapter

    result = results.load("extraction", "smoke", root=smoke_results)
    shown, glued = [], {}
    patch = pytest.MonkeyPatch()
    patch.setattr(book, "glue", lambda name, value: glued.__setitem__(name, value))
    patch.setattr(book, "show", lambda fig, caption: shown.append((fig, caption)))
    patch.setattr(book, "show_html", shown.append)
    try:
        ch = Chapter({"extraction": result})
        source = DRAFT.read_text() if DRAFT.exists() else CHAPTER.read_text().partition(HEADING)[2]
        cells = re.findall(r"```\{code-cell\} ipython3\n:tags: \[hide-input\]\n\n(.*?)```", source, re.S)
        assert cells, "the section has no code cells"
        for cell in cells:
            exec(cell, {"extraction": book, "ch": ch})
        yield result, shown, glued, source
    finally:
        patch.undo()


def test_every_value_the_section_quotes_is_glued(shown_and_glued):
    _, _, glued, source = shown_and_glued
    quoted = set(re.findall(r"\{glue:text\}`([^`]+)`", source))
    assert quoted and not quoted - set(glued), f"quoted but never glued: {sorted(quoted - set(glued))}"
    assert all(isinstance(v, str) and v for v in glued.values())


def test_every_glued_number_is_the_one_in_the_results(shown_and_glued):
    from mnistmem.dataspec import DataSpec
    from mnistmem.experiments.extraction import regime_source

    result, _, glued, _ = shown_and_glued
    for regime in book.regimes(result):
        rows = result.summary(f"completion_{regime}")["rows"]
        for r in rows:
            if r["mask"] == "top":
                assert glued[f"extraction_top_{regime}_{r['prompts']}"] == pct(r["share"])
        assert glued["extraction_prompts_n"] == f"{rows[0]['n']:,}"
        assert glued["extraction_bar"] == book.figures.threshold_text(result.summary(f"completion_{regime}")["bar"])
        m = result.summary(f"membership_{regime}")
        assert glued[f"extraction_auc_{regime}"] == f"{m['auc']:.2f}"
        assert glued[f"extraction_tpr_{regime}"] == pct(m["tpr_at_1pct_fpr"])
        assert glued["extraction_blind_samples"] == f"{result.summary(f'blind_{regime}')['n']:,}"
        experiment, stage, _, _ = regime_source(regime)
        config = result.sibling(experiment).stage(stage)["config"]
        spec = config.get("data") or config.get("train", {}).get("data") or {}
        built = DataSpec.from_dict(spec).build()
        assert glued[f"extraction_digits_{regime}"] == f"{int((built.sources >= 0).sum()):,}"
        if (built.sources < 0).any():
            assert glued[f"extraction_canaries_{regime}"] == f"{len(set(built.sources[built.sources < 0])):,}"
            assert len(m["canary_loss_percentile"]) == len(book.regime_info(result, regime)["canaries"])
    assert glued["extraction_digits_diffusion"] == "60,000" and glued["extraction_digits_diffusion_100"] == "100"
    for n, summary in book.label_runs(result).items():
        assert glued[f"extraction_label_free_{n}"] == pct(summary["rows"][-1]["share"])


def test_the_sentences_on_smoke_results_follow_the_counts(shown_and_glued):
    result, _, glued, _ = shown_and_glued
    regimes = book.regimes(result)
    rows = [r for regime in regimes for r in result.summary(f"completion_{regime}")["rows"]]
    top = [r for r in rows if r["mask"] == "top"]
    for r in top:
        words = "none of" if r["retrieved"] == 0 else f"{r['retrieved']:,} of"
        assert f"{words} {r['n']:,}" in glued["extraction_completion_sentence"]
    assert glued["extraction_law_sentence"].startswith("Given the top half of a training digit, the diffusion model")
    for regime in regimes:
        m = result.summary(f"membership_{regime}")
        assert (
            f"AUC {m['auc']:.2f}, 95% interval {m['auc_low']:.2f} to {m['auc_high']:.2f}"
            in (glued["extraction_membership_sentence"])
        )
    counts = [book.blind_counts(result.summary(f"blind_{regime}")) for regime in regimes]
    if not any(c["copied"] for c in counts):
        assert "there was nothing for the attack to find" in glued["extraction_blind_sentence"]


def test_the_figures_show_every_regime_prompt_set_and_shape(shown_and_glued):
    from mnistmem.experiments.extraction import EXAMPLES_FILE, EXAMPLES_KEPT

    result, shown, _, _ = shown_and_glued
    regimes = book.regimes(result)
    figures = [item for item in shown if isinstance(item, tuple)]
    html = [item for item in shown if isinstance(item, str)]
    chart, caption = figures[0]
    sets = {r["prompts"] for regime in regimes for r in result.summary(f"completion_{regime}")["rows"]}
    assert len(chart.data) == 3 * len(sets) and sum(bool(t.visible) for t in chart.data) == len(sets)
    assert len(chart.layout.updatemenus[0].buttons) == 3 and "smoke scale" in caption
    table = html[0]
    assert table.count("<tr>") == 1 + sum(
        len({r["prompts"] for r in result.summary(f"completion_{regime}")["rows"]}) for regime in regimes
    )
    galleries = [h for h in html if "mnistmem-pairs" in h]
    kept = result.arrays("completion_diffusion_100", EXAMPLES_FILE)
    assert len(galleries) == 2
    cards = galleries[0].count("class='mnistmem-pair'")
    half = EXAMPLES_KEPT // 2  # a "best" card, and a "typical" one where more were kept
    assert cards == sum(1 + (len(kept[f"{s}_top_distance"]) > half) for s in ("training", "test"))
    membership, blind_html = (h for h in html if "mnistmem-table" in h and h is not table)
    assert all(book.regime_info(result, r)["name"] in membership for r in regimes)
    assert blind_html.count("(positive control)") == len([r for r in regimes if r in book.MEMORISING])
    label, _ = figures[1]
    assert [list(t.x) for t in label.data] == [[*map(str, range(10)), "none"]] * len(book.label_runs(result))


def test_the_prompt_shows_only_the_given_pixels():
    from mnistmem.extraction import prompt_mask

    image = np.full((28, 28), 255, dtype=np.uint8)
    shown = book.prompt_image(image, prompt_mask("top"))
    assert (shown[:14] == 255).all() and (shown[14:] == book.HIDDEN_GREY).all() and (image == 255).all()
