"""Getting a training image out of the model: the `extraction` experiment read for the book. Four attacks by
someone who does not hold the training data, each on a model trained on all 60,000 digits and on the memorising
regimes (100 digits; planted canaries) that serve as positive controls:

* completion from a partial image (training digits as prompts against unseen test digits, the control), with
  a gallery of prompt | completion | original;
* membership inference from the model's own loss (ROC AUC with its interval, true positives at 1% false
  positives, the canaries' ranks);
* blind generate-and-filter (precision and recall against the exact search of the same samples);
* a label as the prompt (per-digit copy shares of the class-conditional models, against asking for no digit).

Each part glues one plain sentence built from the numbers (the `*_sentence` functions below, tested on hand-made
summaries); `law_extraction_sentence` and `law_extraction_table` are what the law chapter quotes.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import MODEL_NAMES, MODEL_SUBJECTS, and_list, html_table, pct, scale_note
from mnistmem.book.display import glue, show, show_html
from mnistmem.experiments.extraction import (
    EXAMPLES_FILE,
    EXAMPLES_KEPT,
    LABEL_CRITERION,
    regime_order,
    regime_source,
    subset_size,
)
from mnistmem.stats import newcombe_difference_interval

#: The regimes whose models copy (the census finds copies there): the positive controls of every attack.
MEMORISING = ("diffusion_100", "canaries")
#: The regime the law chapter's sentence names beside the 60,000-digit diffusion model.
LAW_REGIME = "diffusion_100"
MASK_WORDS = {"top": "top half", "left": "left half", "centre": "central square"}
PROMPT_WORDS = {
    "training": "training digits",
    "test": "digits it never saw (control)",
    "canaries": "planted canaries",
}
PROMPT_COLOURS = {"training": figures.PALETTE[1], "test": figures.PALETTE[4], "canaries": figures.PALETTE[3]}
#: Grey level of the hidden part of a prompt in the gallery (ink is white, paper black): visibly "not shown".
HIDDEN_GREY = 110


# --------------------------------------------------------------------------------------------- the regimes


def regimes(result) -> list[str]:
    """The regimes the results hold, in the experiment's order (full models first, then the controls)."""
    stages = result.manifest["stages"]
    found = [name.removeprefix("completion_") for name in stages if name.startswith("completion_")]
    return sorted(found, key=regime_order)


def regime_info(result, regime: str) -> dict:
    """What the reader needs to know about one regime's model, as its completion stage recorded it: `family`,
    `digits` (real training digits), `canaries` (planted counts, in the order of the canary prompts), `name` (a
    short label: "Diffusion, 100 digits") and `subject` ("the diffusion model trained on 100 digits")."""
    summary = result.summary(f"completion_{regime}")
    counts = [c["count"] for c in summary["canaries"]]
    return describe_regime(regime_source(regime)[3], summary["training_digits"], counts)


def describe_regime(family: str, digits: int, canaries: list[int] | None = None) -> dict:
    """The names of a model trained on `digits` real digits (and the planted `canaries`, by count)."""
    canaries = list(canaries or [])
    everything = digits == 60_000
    name = f"{MODEL_NAMES[family]}, {digits:,} digits" + (" + canaries" if canaries else "")
    subject = f"the {MODEL_SUBJECTS[family]} trained on {'all ' if everything else ''}{digits:,} digits"
    if canaries:
        subject += f" with {len(canaries):,} planted canar{'y' if len(canaries) == 1 else 'ies'}"
    return {"family": family, "digits": digits, "canaries": canaries, "name": name, "subject": subject}


def _infos(result) -> dict[str, dict]:
    return {regime: regime_info(result, regime) for regime in regimes(result)}


# --------------------------------------------------------------------------------------------- words


def count_words(count: int, n: int, noun: str = "") -> str:
    """A count in words: "none of 200 training digits" or "3 of 200 training digits"."""
    noun = f" {noun}" if noun else ""
    return f"{'none' if count == 0 else f'{count:,}'} of {n:,}{noun}"


def _rows(rows: list[dict], mask: str) -> dict[str, dict]:
    return {row["prompts"]: row for row in rows if row["mask"] == mask}


def beyond_control(training: dict, test: dict) -> bool:
    """Do training prompts come back as their originals more often than the control's test prompts, at 95%
    confidence (the lower end of the difference's Newcombe interval above zero)?"""
    low, _ = newcombe_difference_interval(training["retrieved"], training["n"], test["retrieved"], test["n"])
    return low > 0


def completion_sentence(rows_by_regime: dict[str, list[dict]], infos: dict[str, dict], mask: str = "top") -> str:
    """Where completion from a partial image retrieves a training digit and where it fails: per regime, the
    `mask` prompt's counts for training digits, the control and canaries; then the regimes where training prompts
    beat the control under any prompt shape, or that none did."""
    parts = []
    for regime, rows in rows_by_regime.items():
        sets = _rows(rows, mask)
        training, test = sets["training"], sets["test"]
        own = count_words(training["retrieved"], training["n"], "training digits")
        text = (
            f"{infos[regime]['subject']} completed {own} to the original and "
            f"{count_words(test['retrieved'], test['n'])} digits it never saw"
        )
        if "canaries" in sets:
            canaries = sets["canaries"]
            text += f", and {count_words(canaries['retrieved'], canaries['n'])} canaries"
        parts.append(text)
    text = f"Shown the {MASK_WORDS[mask]} of a digit, " + "; ".join(parts) + ". "
    wins = [
        regime
        for regime, rows in rows_by_regime.items()
        if any(beyond_control(_rows(rows, m)["training"], _rows(rows, m)["test"]) for m in {r["mask"] for r in rows})
    ]
    canary_hits = [
        regime
        for regime, rows in rows_by_regime.items()
        if any(r["prompts"] == "canaries" and r["retrieved"] > 0 for r in rows)
    ]
    if wins:
        text += (
            "A partial image retrieved training digits more often than the control, at 95% confidence, for "
            + and_list([infos[r]["subject"] for r in wins])
        )
        rest = [r for r in rows_by_regime if r not in wins]
        text += (
            f"; for {and_list([infos[r]['subject'] for r in rest])} it did no better than on digits never seen."
            if rest
            else "."
        )
    else:
        text += (
            "For no model did a partial training digit come back as its original more often than a digit the "
            "model never saw, whatever part of it the prompt showed: completion retrieved nothing beyond chance."
        )
    if canary_hits:
        text += f" Planted canaries came back from part of themselves for {infos[canary_hits[0]]['subject']}."
    return text


#: The regimes the law chapter quotes, in its order: the memorising model, the same recipe on more digits, and
#: the diffusion model trained on all 60,000.
LAW_REGIMES = (LAW_REGIME, "diffusion_3200", "diffusion")


def larger_sentence(result, infos: dict[str, dict]) -> str:
    """The regimes trained with the memorising model's recipe on more digits (the onset grid's larger kept runs),
    introduced in one sentence with what the exact search finds in their blind samples; empty where the results
    hold none."""
    larger = [r for r in infos if subset_size(r) is not None and r != LAW_REGIME]
    if not larger:
        return ""
    parts = []
    for r in larger:
        c = blind_counts(result.summary(f"blind_{r}"))
        parts.append(
            f"{infos[r]['digits']:,} digits (in {c['samples']:,} of its samples the exact search finds "
            f"{_images(c['copied'])} copied)"
        )
    return (
        f"Between the two extremes, the first control's recipe trained on {and_list(parts)} shows how each attack "
        "fares as the training set grows."
    )


def law_sentence(
    rows_by_regime: dict[str, list[dict]], infos: dict[str, dict], regimes: tuple[str, ...] = LAW_REGIMES
) -> str:
    """Given the top half of a training digit, how often each of `regimes` (those the results hold) completed it
    to the original, against digits it never saw; the regimes after the first that retrieved nothing from either
    prompt set, with the same number of tries, share one sentence."""
    parts, empty = [], []
    for regime in regimes:
        if regime not in rows_by_regime:
            continue
        sets = _rows(rows_by_regime[regime], "top")
        if not parts:
            parts.append(
                f"Given the top half of a training digit, {infos[regime]['subject']} completed it to the original "
                f"in {_tries(sets['training'])}; for digits it never saw, in {_tries(sets['test'])}."
            )
        elif (
            sets["training"]["retrieved"] == sets["test"]["retrieved"] == 0
            and sets["training"]["n"] == sets["test"]["n"]
            and (not empty or sets["training"]["n"] == empty[0][1]["n"])
        ):
            empty.append((regime, sets["training"]))
        else:
            parts.append(
                f"For {infos[regime]['subject']}, the same test gave {_tries(sets['training'])} for its training "
                f"digits and {_tries(sets['test'])} for digits it never saw."
            )
    if empty:
        row = empty[0][1]
        them = and_list([infos[r]["subject"] for r, _ in empty])
        each = "each" if len(empty) > 1 else "it"
        parts.append(
            f"For {them}, the same test completed none of {row['n']:,} training digits to the original and none of "
            f"{row['n']:,} digits never seen ({each} at most {pct(row['ci_high'])} at 95% confidence)."
        )
    return " ".join(parts)


def law_extraction_sentence(result) -> str:
    """What the law chapter says on the EDPB's question (can an item of the training data be obtained from the
    model, directly or probabilistically, by querying it?), in three short verdicts over the `LAW_REGIMES` the
    results hold: which models complete the top half of a training digit to the original more often than an
    unseen digit's, which give their training digits away through their own loss, and what the blind search's
    silence means given its positive control. `law_extraction_table` gives the numbers behind each."""
    infos = _law_infos(result)
    order = list(infos)
    completed = []
    for regime in order:
        sets = _rows(result.summary(f"completion_{regime}")["rows"], "top")
        if beyond_control(sets["training"], sets["test"]):
            completed.append(regime)
    given_away = [r for r in order if result.summary(f"membership_{r}")["auc_low"] > 0.5]
    verdict = blind_verdict({r: result.summary(f"blind_{r}") for r in order}, infos)
    return " ".join(
        part
        for part in (
            _only_sentence(
                completed,
                order,
                infos,
                "Given the top half of a training digit, {only}{them} completed it to the original more often than "
                "{it_they} completed digits {it_they} never saw.",
                "Given the top half of a training digit, no model in the table completed it to the original more "
                "often than digits it never saw.",
            ),
            _only_sentence(
                given_away,
                order,
                infos,
                "The model's own loss told its training digits from unseen ones better than a coin toss {only}for "
                "{them}.",
                "For no model in the table did its own loss tell its training digits from unseen ones better than a "
                "coin toss.",
            ),
            verdict,
        )
        if part
    )


def _law_infos(result) -> dict[str, dict]:
    """`regime_info` of the `LAW_REGIMES` the results hold, in the law chapter's order."""
    infos = _infos(result)
    return {regime: infos[regime] for regime in LAW_REGIMES if regime in infos}


def _only_sentence(found: list[str], order: list[str], infos: dict[str, dict], template: str, none: str) -> str:
    """`template` said of the regimes in `found` ({only} becomes "only " when some of `order` are not among them),
    or `none` when there are none."""
    if not found:
        return none
    return template.format(
        them=and_list([infos[r]["subject"] for r in found]),
        only="only " if len(found) < len(order) else "",
        it_they="it" if len(found) == 1 else "they",
    )


def law_extraction_table(ch) -> None:
    """The three attacks of chapter 7 side by side for the law chapter's models (`LAW_REGIMES`): completion from
    the top half (training digits against unseen ones), membership from the loss (AUC with its interval) and the
    blind search (what it returned against what the exact search shows there was to find)."""
    result = ch["extraction"]
    infos = _law_infos(result)
    rows = []
    for regime in infos:
        sets = _rows(result.summary(f"completion_{regime}")["rows"], "top")
        blind = blind_counts(result.summary(f"blind_{regime}"))
        rows.append(
            [
                infos[regime]["name"] + (" (positive control)" if regime in MEMORISING else ""),
                _short_tries(sets["training"]),
                _short_tries(sets["test"]),
                auc_words(result.summary(f"membership_{regime}")),
                (
                    f"{count_words(blind['hits'], blind['candidates'], 'candidates')} real"
                    if blind["candidates"]
                    else "no candidate"
                )
                + f"; {_images(blind['copied'])} copied in {blind['samples']:,} samples",
            ]
        )
    show_html(
        html_table(
            [
                "model",
                "top half of a training digit completed to the original",
                "top half of a digit it never saw, completed (control)",
                "its own loss tells training digits from unseen ones (AUC; 0.5 = a coin toss)",
                "blind search: candidates that are real training images; copies there were to find",
            ],
            rows,
            "Three ways to get a training digit out of a model without the training data (chapter 7), for three "
            "diffusion models that differ only in how many digits they were trained on. Shares are of the tries, "
            "with 95% confidence intervals; the exact search of the blind attack's samples (which uses the "
            f"training data) says what there was to find ({scale_note(result)}).",
        )
    )


def _short_tries(row: dict) -> str:
    """A completion count for a table cell: "28 of 100: 28.00% (20.14% to 37.49%)" or "none of 200 (at most
    1.88%)"."""
    if row["retrieved"] == 0:
        return f"none of {row['n']:,} (at most {pct(row['ci_high'])})"
    return f"{row['retrieved']:,} of {row['n']:,}: {pct(row['share'], row['ci_low'], row['ci_high'])}"


def _tries(row: dict) -> str:
    if row["retrieved"] == 0:
        return f"none of {row['n']:,} tries (at most {pct(row['ci_high'])} at 95% confidence)"
    return f"{pct(row['share'])} of {row['n']:,} tries (95% interval {pct(row['ci_low'])} to {pct(row['ci_high'])})"


def auc_words(summary: dict) -> str:
    """The AUC for a table cell: "0.71 (95% interval 0.66 to 0.76)"."""
    return f"{summary['auc']:.2f} (95% interval {summary['auc_low']:.2f} to {summary['auc_high']:.2f})"


def _auc_clause(summary: dict) -> str:
    """The AUC inside a sentence's parentheses: "AUC 0.71, 95% interval 0.66 to 0.76"."""
    return f"AUC {summary['auc']:.2f}, 95% interval {summary['auc_low']:.2f} to {summary['auc_high']:.2f}"


def membership_sentence(summaries: dict[str, dict], infos: dict[str, dict]) -> str:
    """Where the model's own loss tells its training digits from unseen ones (the AUC's interval above 0.5) and
    where it does not; the share of training digits caught at 1% false alarms; the canaries' ranks."""
    above = [r for r, s in summaries.items() if s["auc_low"] > 0.5]
    chance = [r for r in summaries if r not in above]
    chance_words = and_list([f"{infos[r]['subject']} ({_auc_clause(summaries[r])})" for r in chance]) if chance else ""
    if above:
        text = (
            "The model's own loss tells its training digits from digits it never saw better than a coin toss for "
            + and_list(
                [
                    f"{infos[r]['subject']} ({_auc_clause(summaries[r])}; at 1% false alarms it picks out "
                    f"{pct(summaries[r]['tpr_at_1pct_fpr'])} of the training digits)"
                    for r in above
                ]
            )
        )
        if chance:
            text += f", and no better than chance for {chance_words}"
    else:
        text = (
            "For no model does its own loss tell its training digits from digits it never saw better than a coin "
            f"toss: {chance_words}"
        )
    if chance:
        text += ", an interval that includes 0.5" if len(chance) == 1 else ", intervals that include 0.5"
    text += "."
    for regime, summary in summaries.items():
        ranks = summary.get("canary_loss_percentile")
        if not ranks:
            continue
        text += (
            f" Of the digits that {infos[regime]['subject']} never saw, "
            + (f"{pct(ranks[0])}" if len(ranks) == 1 else f"between {pct(min(ranks))} and {pct(max(ranks))}")
            + f" had a lower loss than {'the' if len(ranks) == 1 else 'a'} planted canary (0% would single a canary "
            "out as trained on)"
        )
        counts = infos[regime]["canaries"]
        if len(counts) == len(ranks) > 1 and min(ranks) < max(ranks):
            clearest = counts[int(np.argmin(ranks))]
            text += f"; the clearest was planted {clearest:,} time{'s' if clearest != 1 else ''}"
        text += "."
    return text


def blind_counts(summary: dict) -> dict:
    """A blind stage's counts: `candidates` returned, `hits` (candidates within the copy bar of a training
    image), `copied` (distinct training images the samples copy, by exact search) and `named` (how many of those
    the hits name)."""
    candidates = summary["candidates"]
    copied = summary["copied_by_exact_search"]
    return {
        "samples": summary["n"],
        "candidates": len(candidates),
        "hits": summary["hits"],
        "copied": copied,
        "named": summary["named"],
    }


def _images(count: int) -> str:
    """A number of training images in words: "no training image", "12 training images"."""
    return "no training image" if count == 0 else f"{count:,} training image{'s' if count != 1 else ''}"


def blind_sentence(summaries: dict[str, dict], infos: dict[str, dict]) -> str:
    """The generate-and-filter attack in words: first the positive controls (where copies exist, does it find
    them?), then the 60,000-digit models, then what the latter result means given the former."""
    counts = {r: blind_counts(s) for r, s in summaries.items()}
    controls = [r for r in summaries if r in MEMORISING]
    others = [r for r in summaries if r not in MEMORISING]
    parts = []
    for r in controls:
        c = counts[r]
        if c["copied"] == 0:
            parts.append(
                f"in {c['samples']:,} samples of {infos[r]['subject']}, a positive control, the exact search found "
                "no copy of a training image, so there was nothing for the attack to find"
            )
        else:
            parts.append(
                f"in {c['samples']:,} samples of {infos[r]['subject']}, a positive control, the exact search finds "
                f"{c['copied']:,} distinct training image{'s' if c['copied'] != 1 else ''} copied; the attack "
                f"returned {count_words(c['hits'], c['candidates'], 'candidates')} real training images"
                + ("" if c["candidates"] else " (it returned no candidate)")
                + f" and named {count_words(c['named'], c['copied'])} of them"
            )
    for r in others:
        c = counts[r]
        parts.append(
            f"in {c['samples']:,} samples of {infos[r]['subject']}, the attack returned "
            + (
                f"{count_words(c['hits'], c['candidates'], 'candidates')} real training images"
                if c["candidates"]
                else "no candidate"
            )
            + f" (the exact search finds {_images(c['copied'])} copied)"
        )
    text = "Without the training data: " + "; ".join(parts) + "."
    verdict = blind_verdict(summaries, infos)
    return f"{text} {verdict}" if verdict else text


def blind_verdict(summaries: dict[str, dict], infos: dict[str, dict]) -> str:
    """What the blind attack's result on the models that are not positive controls means, given what it did on
    the controls (found their copies, missed them, or had none to find); empty when there are no such models."""
    counts = {r: blind_counts(s) for r, s in summaries.items()}
    controls = [r for r in summaries if r in MEMORISING]
    others = [r for r in summaries if r not in MEMORISING]
    if not others:
        return ""
    fired = [r for r in controls if counts[r]["named"] > 0]
    had = [r for r in controls if counts[r]["copied"] > 0]
    found = sum(counts[r]["hits"] for r in others)
    result = "finding nothing" if found == 0 else f"{found:,} real training image{'s' if found != 1 else ''}"
    sizes = sorted({infos[r]["digits"] for r in others})
    them = (
        f"the models trained on {'all ' if sizes == [60_000] else ''}{sizes[0]:,} digits"
        if len(sizes) == 1
        else "the other models"
    )
    if fired and found == 0:
        return (
            f"Because the attack finds copies where they exist, its {result} on {them} is evidence about those "
            "models: copies, if they make any, are too rare for a blind search of this size to meet."
        )
    if fired:
        return (
            f"The attack finds copies where they exist, and it took {result} out of {them} as well, without the "
            "training data."
        )
    if had:
        return (
            "The attack found none of the copies even where the exact search shows them, so its result on "
            f"{them} says nothing about them."
        )
    return (
        f"{'Neither' if len(controls) == 2 else 'No'} positive control gave the attack a copy to find, so at this "
        f"scale the test of the attack is void, and its {result} on {them} means nothing yet."
    )


def label_sentence(summaries: dict[int, dict]) -> str:
    """A label as the prompt, per training-set size: the range of per-digit copy shares (the highest named, with
    its interval) against the same model asked for no digit, and whether asking for a digit changes the share."""
    parts = []
    for _, summary in sorted(summaries.items()):
        rows = [r for r in summary["rows"] if r["label"] is not None]
        free = next(r for r in summary["rows"] if r["label"] is None)
        asked = sum(r["copies"] for r in rows), sum(r["n"] for r in rows)
        subject = f"the class-conditional diffusion model trained on {summary['training_digits']:,} digits"
        if asked[0] == 0 and free["copies"] == 0:
            parts.append(
                f"{subject} copied none of its {asked[1]:,} samples asked for a digit, nor any of {free['n']:,} asked "
                "for none"
            )
            continue
        top = max(rows, key=lambda r: (r["share"], -r["label"]))
        low_row = min(rows, key=lambda r: (r["share"], r["label"]))
        text = (
            f"asked for each digit in turn, {subject} copied a training digit in {pct(low_row['share'])} to "
            f"{pct(top['share'])} of its samples (most for a {top['label']}: "
            f"{pct(top['share'], top['ci_low'], top['ci_high'])}), against "
            f"{pct(free['share'], free['ci_low'], free['ci_high'])} when asked for none"
        )
        low, high = newcombe_difference_interval(asked[0], asked[1], free["copies"], free["n"])
        if low > 0:
            text += ": naming a digit made copies more common"
        elif high < 0:
            text += ": naming a digit made copies rarer"
        else:
            text += ": naming a digit made no clear difference"
        parts.append(text)
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------------------------- completion


def completion_chart(ch) -> None:
    """The share of completions that retrieve the original (hidden part within the pixel-distance copy bar), per
    regime and prompt set (training digits, the unseen control, canaries), with 95% intervals; a menu switches the
    prompt's shape. Glues `extraction_completion_sentence`, `extraction_law_sentence`, `extraction_prompts_n`,
    `extraction_bar`, `extraction_digits_<regime>` (its training digits), `extraction_canaries_<regime>` (how many
    canaries were planted, where any were) and `extraction_top_<regime>_<prompts>` (the top-half share)."""
    result = ch["extraction"]
    infos = _infos(result)
    summaries = {r: result.summary(f"completion_{r}") for r in infos}
    rows_by_regime = {r: s["rows"] for r, s in summaries.items()}
    masks = list(dict.fromkeys(row["mask"] for rows in rows_by_regime.values() for row in rows))
    prompt_sets = list(dict.fromkeys(row["prompts"] for rows in rows_by_regime.values() for row in rows))
    fig = go.Figure()
    visible = []
    for m, mask in enumerate(masks):
        for prompts in prompt_sets:
            found = [(r, _rows(rows, mask).get(prompts)) for r, rows in rows_by_regime.items()]
            found = [(r, row) for r, row in found if row is not None]
            fig.add_trace(
                go.Bar(
                    y=[figures.wrap_label(infos[r]["name"], 14) for r, _ in found],
                    x=[100 * row["share"] for _, row in found],
                    orientation="h",
                    name=PROMPT_WORDS[prompts],
                    marker_color=PROMPT_COLOURS[prompts],
                    error_x=figures.percent_interval(row for _, row in found),
                    customdata=[[row["retrieved"], row["n"], row["median_hidden_distance"]] for _, row in found],
                    hovertemplate="%{customdata[0]:,} of %{customdata[1]:,} retrieved (%{x:.1f}%); median "
                    "distance of the hidden part %{customdata[2]:.2f}<extra>" + PROMPT_WORDS[prompts] + "</extra>",
                    visible=m == 0,
                )
            )
            visible.append(m)
    fig.update_layout(
        barmode="group",
        height=520,
        plot_bgcolor="white",
        xaxis={"title": "% of completions that retrieve the original", "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},  # the first regime on top
        legend={"orientation": "h", "y": -0.22, "traceorder": "normal"},
        margin={"t": 90},
        updatemenus=[
            {
                "x": 0,
                "y": 1.2,
                "xanchor": "left",
                "buttons": [
                    {
                        "label": f"prompt: the {MASK_WORDS[mask]}",
                        "method": "update",
                        "args": [{"visible": [v == m for v in visible]}],
                    }
                    for m, mask in enumerate(masks)
                ],
            }
        ],
    )
    bar = next(iter(summaries.values()))["bar"]
    show(
        figures.wrap_figure_text(fig),
        "How often a model, shown part of a digit, fills in the rest so closely that the hidden part lies within "
        f"the pixel-distance copy threshold ({figures.threshold_text(bar)}) of the original's: for the model's own "
        "training digits, for test digits of the same classes that it never saw (the control: a rate it can reach "
        "only by good guessing), and for planted canaries. Bars are 95% confidence intervals; the menu changes "
        f"which part of the digit the prompt shows ({scale_note(result)}).",
    )
    glue("extraction_prompts_n", f"{next(iter(rows_by_regime.values()))[0]['n']:,}")
    for regime, info in infos.items():
        glue(f"extraction_digits_{regime}", f"{info['digits']:,}")
        if info["canaries"]:
            glue(f"extraction_canaries_{regime}", f"{len(info['canaries']):,}")
    glue("extraction_bar", figures.threshold_text(bar))
    for regime, rows in rows_by_regime.items():
        for prompts, row in _rows(rows, "top").items():
            glue(f"extraction_top_{regime}_{prompts}", pct(row["share"]))
    glue("extraction_larger_sentence", larger_sentence(result, infos))
    glue("extraction_completion_sentence", completion_sentence(rows_by_regime, infos))
    glue("extraction_law_sentence", law_sentence(rows_by_regime, infos))


def completion_table(ch) -> None:
    """Every completion count: one row per regime and prompt set, one column per prompt shape (retrieved of
    tried, the share and its 95% interval)."""
    result = ch["extraction"]
    infos = _infos(result)
    rows = []
    masks: list[str] = []
    for regime, info in infos.items():
        found = result.summary(f"completion_{regime}")["rows"]
        masks = masks or list(dict.fromkeys(row["mask"] for row in found))
        for prompts in dict.fromkeys(row["prompts"] for row in found):
            by_mask = {row["mask"]: row for row in found if row["prompts"] == prompts}
            rows.append(
                [info["name"], PROMPT_WORDS[prompts]]
                + [
                    f"{by_mask[m]['retrieved']:,} of {by_mask[m]['n']:,}: "
                    + pct(by_mask[m]["share"], by_mask[m]["ci_low"], by_mask[m]["ci_high"])
                    for m in masks
                ]
            )
    show_html(
        html_table(
            ["model", "prompts", *[f"shown the {MASK_WORDS[m]}" for m in masks]],
            rows,
            "Completions that retrieve the original, of those tried, with the share and its 95% confidence interval "
            f"({scale_note(result)}).",
        )
    )


def prompt_image(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The digit as the prompt shows it: the hidden pixels grey."""
    out = np.array(image, dtype=np.uint8, copy=True)
    out[~np.asarray(mask, dtype=bool)] = HIDDEN_GREY
    return out


def _gallery_card(
    words: str,
    kind: str,
    chosen: np.ndarray,
    originals: np.ndarray,
    completions: np.ndarray,
    distance: np.ndarray,
    shape: np.ndarray,
    bar: float,
) -> str:
    """One gallery card: rows of prompt | completion | original for the `chosen` examples, their hidden parts'
    distances, and how many count as retrieved."""
    triples = [image for i in chosen for image in (prompt_image(originals[i], shape), completions[i], originals[i])]
    strip = figures.mosaic(np.stack(triples), 3)
    retrieved = int((distance[chosen] <= bar).sum())
    gaps = [f"{distance[i]:.2f}" for i in chosen]
    title = f"{words.capitalize()}, {kind}: hidden part{'s' if len(gaps) > 1 else ''} {and_list(gaps)} from the " + (
        "originals, top to bottom" if len(gaps) > 1 else "original"
    )
    height = figures.PAIR_WIDTH * strip.shape[0] // strip.shape[1]
    return (
        "<div class='mnistmem-pair' tabindex='0'>"
        f"<img src='{figures.png_data_uri(strip)}' data-digits='3' width='{figures.PAIR_WIDTH}' height='{height}' "
        f"alt='{html.escape(title)}: in each row the prompt, the completion and the original'>"
        f"<p class='mnistmem-pair-title'>{html.escape(title)}</p><ul class='mnistmem-verdicts'>"
        f"<li class='{'counted' if retrieved else 'not-counted'}'><b>"
        f"{'none' if retrieved == 0 else f'{retrieved:,}'} of {len(chosen):,} retrieved</b> (hidden part within "
        f"{figures.threshold_text(bar)} of the original's)</li></ul></div>"
    )


def completion_gallery(ch, regime: str = LAW_REGIME, mask: str = "top") -> None:
    """For one regime and prompt shape: the best and typical completions of each prompt set, each as prompt (the
    hidden part grey) | completion | original, with the hidden part's distance and whether it counts as
    retrieved."""
    from mnistmem.extraction import prompt_mask

    result = ch["extraction"]
    info = regime_info(result, regime)
    stage = f"completion_{regime}"
    summary = result.summary(stage)
    kept = result.arrays(stage, EXAMPLES_FILE)
    shape = prompt_mask(mask)
    bar = summary["bar"]
    blocks = []
    for prompts in dict.fromkeys(row["prompts"] for row in summary["rows"]):
        originals = kept[f"{prompts}_{mask}_original"]
        completions = kept[f"{prompts}_{mask}_completion"]
        distance = kept[f"{prompts}_{mask}_distance"]
        order = np.argsort(distance, kind="stable")
        cards = [
            _gallery_card(PROMPT_WORDS[prompts], kind, chosen, originals, completions, distance, shape, bar)
            for kind, chosen in (("best", order[: EXAMPLES_KEPT // 2]), ("typical", order[EXAMPLES_KEPT // 2 :]))
            if len(chosen)
        ]
        blocks.append(
            f"<p class='mnistmem-pairs-heading'><b>{html.escape(PROMPT_WORDS[prompts].capitalize())}</b></p>"
            f"<div class='mnistmem-pair-grid'>{''.join(cards)}</div>"
        )
    show_html(
        "<figure class='mnistmem-figure mnistmem-pairs'>"
        + "".join(blocks)
        + "<figcaption class='mnistmem-caption'>"
        + html.escape(
            f"{info['subject'].capitalize()}, shown the {MASK_WORDS[mask]} of a digit: each row is the prompt (the "
            "hidden part grey), the model's completion and the original. For each kind of prompt, the completions "
            "closest to the original, then typical ones (around the median distance). Click a card to enlarge it "
            f"({scale_note(result)})."
        )
        + "</figcaption></figure>"
    )


# --------------------------------------------------------------------------------------------- membership


def membership_table(ch) -> None:
    """Per regime: the ROC AUC of the loss as a membership test (95% interval), the share of training digits it
    picks out at 1% false positives, and, where canaries were planted, where each canary's loss ranks among the
    unseen digits'. Glues `extraction_membership_sentence`, `extraction_auc_<regime>` and
    `extraction_tpr_<regime>`."""
    result = ch["extraction"]
    infos = _infos(result)
    summaries = {r: result.summary(f"membership_{r}") for r in infos}
    rows = []
    for regime, s in summaries.items():
        ranks = s.get("canary_loss_percentile")
        canaries = (
            "; ".join(
                f"planted {count:,}×: {pct(p)}" for count, p in zip(infos[regime]["canaries"], ranks, strict=False)
            )
            if ranks
            else "none planted"
        )
        rows.append(
            [
                infos[regime]["name"],
                f"{s['members']:,} against {s['outsiders']:,}",
                auc_words(s),
                pct(s["tpr_at_1pct_fpr"]),
                canaries,
            ]
        )
        glue(f"extraction_auc_{regime}", f"{s['auc']:.2f}")
        glue(f"extraction_tpr_{regime}", pct(s["tpr_at_1pct_fpr"]))
    show_html(
        html_table(
            [
                "model",
                "training digits against unseen digits",
                "AUC (0.5 = a coin toss)",
                "training digits caught at 1% false alarms",
                "canaries: unseen digits with a lower loss",
            ],
            rows,
            "Does the model's own loss give its training digits away? The AUC is the chance that a random training "
            "digit has a lower loss than a random unseen one (1 = always, 0.5 = no better than a coin toss), with its "
            "95% bootstrap interval; the fourth column is the share of training digits flagged when only 1% of "
            f"unseen digits may be flagged wrongly ({scale_note(result)}).",
        )
    )
    glue("extraction_membership_sentence", membership_sentence(summaries, infos))


# --------------------------------------------------------------------------------------------- blind


def blind_table(ch) -> None:
    """Generate-and-filter per regime: samples drawn, training images they copy (exact search), candidates the
    attack returns, how many are real training images (precision) and how many of the copied images they name
    (recall); the memorising regimes marked as positive controls. Glues `extraction_blind_sentence` and
    `extraction_blind_samples`."""
    result = ch["extraction"]
    infos = _infos(result)
    summaries = {r: result.summary(f"blind_{r}") for r in infos}
    rows = []
    for regime, s in summaries.items():
        c = blind_counts(s)
        rows.append(
            [
                infos[regime]["name"] + (" (positive control)" if regime in MEMORISING else ""),
                f"{c['samples']:,}",
                f"{c['copied']:,}",
                f"{c['candidates']:,}",
                f"{c['hits']:,}" + (f" ({pct(s['precision'])})" if s["precision"] is not None else ""),
                f"{c['named']:,}" + (f" ({pct(s['recall'])})" if s["recall"] is not None else " (nothing to find)"),
            ]
        )
    show_html(
        html_table(
            [
                "model",
                "samples drawn",
                "training images copied (exact search)",
                "candidates returned",
                "real training images among them (precision)",
                "copied images named (recall)",
            ],
            rows,
            "The blind attack: group near-identical samples, call each group's central sample a candidate "
            "training image, then (only to score it) check the candidates against the training set. The exact "
            "search of the same samples says what there was to find. The memorising models are positive controls: "
            f"the attack must find their copies before its silence elsewhere means anything ({scale_note(result)}).",
        )
    )
    glue("extraction_blind_samples", f"{next(iter(summaries.values()))['n']:,}")
    glue("extraction_blind_sentence", blind_sentence(summaries, infos))


# --------------------------------------------------------------------------------------------- labels


def label_runs(result) -> dict[int, dict]:
    """The label stages' summaries, by the training-set size in their name."""
    return {
        int(stage.removeprefix("label_")): result.summary(stage)
        for stage in result.manifest["stages"]
        if stage.startswith("label_")
    }


def label_chart(ch) -> None:
    """The share of samples that copy a training digit (ratio test, with 95% intervals) when the class-conditional
    diffusion model is asked for each digit, and when it is asked for none; one set of bars per training-set size.
    Glues `extraction_label_sentence` and `extraction_label_free_<n>` (the share asked for no digit)."""
    from mnistmem.book.common import CRITERION_NAMES

    result = ch["extraction"]
    runs = label_runs(result)
    fig = go.Figure()
    colours = figures.ramp(figures.model_colour("diffusion"), len(runs))
    for colour, (n, summary) in zip(colours, sorted(runs.items()), strict=True):
        rows = summary["rows"]
        fig.add_trace(
            go.Bar(
                x=["none" if r["label"] is None else str(r["label"]) for r in rows],
                y=[100 * r["share"] for r in rows],
                name=f"trained on {summary['training_digits']:,} digits",
                marker_color=colour,
                error_y=figures.percent_interval(rows),
                customdata=[
                    [r["copies"], r["n"], 100 * (r["nearest_has_label"] or 0), r["distinct_copied"]] for r in rows
                ],
                hovertemplate="%{customdata[0]:,} of %{customdata[1]:,} samples copy (%{y:.1f}%), "
                "%{customdata[3]:,} distinct digits<extra></extra>",
            )
        )
        glue(f"extraction_label_free_{n}", pct(rows[-1]["share"]))
    fig.update_layout(
        barmode="group",
        height=420,
        plot_bgcolor="white",
        xaxis={"title": "digit asked for ('none': no label given)", "type": "category"},
        yaxis={"title": f"% of samples that are copies ({CRITERION_NAMES[LABEL_CRITERION]})", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.3},
    )
    show(
        figures.wrap_figure_text(fig),
        "A label as the prompt: a diffusion model trained to draw the digit it is asked for, asked for each digit "
        "in turn and, on the right, for none (the same model, so the comparison is like with like). Bars are the "
        f"share of its samples that copy one of its own training digits ({CRITERION_NAMES[LABEL_CRITERION]}), with "
        f"95% confidence intervals ({scale_note(result)}).",
    )
    glue("extraction_label_sentence", label_sentence(runs))
