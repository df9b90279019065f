"""The rules that decide what the book *says*: each sentence a chapter prints about a measurement is
built here from numbers passed in (a summary, a few counts), so every rule is unit-tested on hand-made
inputs (tests/test_sentences.py), edge cases and results against the book's thesis included.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import statistics

from mnistmem.book.common import (
    CRITERION_NAMES,
    HEADLINE_WORDS,
    MODEL_NOUNS,
    MODEL_SUBJECTS,
    and_list,
    model_name,
    pct,
)
from mnistmem.book.figures import threshold_text
from mnistmem.onset import gate_share
from mnistmem.stats import newcombe_difference_interval

#: |C_T| below this reads as "about as close as fresh handwriting". C_T averages per-region Z-scores, each
#: standard normal when samples and fresh handwriting lie alike, so chance alone rarely takes it past 2.
C_T_NEAR_ZERO = 2.0


def copy_words(info: dict) -> str:
    """How a criterion's threshold reads: "at most" / "below" for distances and ratios (a copy when the score
    is small), "at least" / "above" for similarities, by whether the threshold itself counts."""
    if info["direction"] == "below":
        return "at most" if info.get("inclusive", True) else "below"
    return "at least" if info.get("inclusive", True) else "above"


def c_t_text(c_t: float) -> str:
    """C_T with its sign and a true minus sign, one decimal (two below 1): "+14.3", "−3.2", "+0.05"."""
    return f"{c_t:+.{1 if abs(c_t) >= 1 else 2}f}".replace("-", "−")


def c_t_reading(c_t: float) -> str:
    """What a value of Meehan et al.'s C_T says, in a few words. Positive: samples lie farther from the training
    set than fresh handwriting (under-fitting); negative: closer (copying); near 0: like fresh handwriting."""
    if c_t <= -C_T_NEAR_ZERO:
        return "closer to the training digits than fresh handwriting (a sign of copying)"
    if c_t >= C_T_NEAR_ZERO:
        return "farther from the training digits than fresh handwriting (under-fitting, not copying)"
    return "about as close to the training digits as fresh handwriting"


def c_t_sentence(c_t: float) -> str:
    """One model's C_T for the prose of chapters 3-5, with what its sign means."""
    text = (
        "Meehan's data-copying test, the last row, judges the model as a whole: region by region, it asks whether "
        f"the samples lie closer to their nearest training digits than fresh handwriting does. Here C_T = "
        f"{c_t_text(c_t)}. "
    )
    if c_t >= C_T_NEAR_ZERO:
        return text + (
            "A positive value means the samples lie farther from the training digits than fresh handwriting does: "
            "the mark of a model that has not learnt to write as closely to its training data as real writers do "
            "(under-fitting), not of copying. Copying would show as a value well below 0."
        )
    if c_t <= -C_T_NEAR_ZERO:
        return text + (
            "A negative value means the samples lie closer to the training digits than fresh handwriting does: "
            "the sign of memorisation that the test was built to detect."
        )
    return text + (
        "A value near 0 means the samples lie about as close to the training digits as fresh handwriting does: "
        "the test sees neither copying nor under-fitting in the model as a whole."
    )


def verdict_sentence(summary: dict, closest: float, closest_test: float, test_digits: int) -> str:
    """The verdict on one model's samples: does any definition count more copies among them than among
    independent test digits (the lower end of the excess's 95% interval above zero), and how close does the
    closest sample come, beside the closest of `test_digits` test digits? `summary` is a score stage's summary:
    `n` samples and, per criterion, `count`, `rate`, `baseline_rate` and `excess_ci_low`."""
    distances = (
        f"the closest sample lies at distance {closest:.2f} from its nearest training image, against "
        f"{closest_test:.2f} for the closest of the {test_digits:,} test digits"
    )
    above = [r for r in summary["criteria"] if r["excess_ci_low"] > 0]
    if not above:
        top = max(summary["criteria"], key=lambda r: r["count"])
        if top["count"] == 0:
            return f"No definition counts a single one of these {summary['n']:,} samples as a copy; {distances}."
        return (
            f"No definition finds more copies among these {summary['n']:,} samples than among independent test "
            f"digits (the most any definition flags is {top['count']:,}, by the "
            f"{CRITERION_NAMES.get(top['criterion'], top['criterion'])}); {distances}."
        )
    parts = [
        f"{r['count']:,} by the {CRITERION_NAMES.get(r['criterion'], r['criterion'])} ({pct(r['rate'])}, test "
        f"digits {pct(r['baseline_rate'])})"
        for r in above
    ]
    return (
        f"More samples count as copies than independent test digits do under {len(above)} of "
        f"{len(summary['criteria'])} definitions: " + "; ".join(parts) + f". For scale, {distances}."
    )


def cpu_words(cpu: dict) -> str:
    """A processor as a reader would say it: "an Intel Xeon processor with AMX matrix units"."""
    model = " ".join(cpu["model"].replace("(R)", "").replace("(TM)", "").replace("Processor", "").split())
    units = {
        "amx": "with AVX-512 and AMX matrix units",
        "avx512": "with AVX-512 vector units",
        "avx2": "with AVX2 vector units only",
    }.get(cpu["kind"].rsplit("-", 1)[-1], "")
    article = "an" if model[:1].lower() in "aeiou" else "a"
    return f"{article} {model} processor {units}".strip()


def regeneration_sentence(result) -> str:
    """What regenerating the main models' samples from their seeds on another machine showed (the
    randomness experiment's `regeneration` stage): bit-exact only on the CPU kind that drew them."""
    from mnistmem.copies import CRITERIA

    if "regeneration" not in result.manifest["stages"]:
        return ""
    summary = result.summary("regeneration")
    cpu = summary["regenerated_on"]
    checked = [m for m in summary["models"] if "n" in m]
    if not checked:
        return ""
    counts = " and ".join(
        f"{m['identical']:,} of {m['n']:,} {MODEL_NOUNS.get(m['model'], m['model'])} samples" for m in checked
    )
    drawn = {m["drawn_on"]["kind"]: m["drawn_on"] for m in checked if m["drawn_on"]}
    where = " and ".join(cpu_words(c) for c in drawn.values())
    if not drawn:
        where = "a machine whose processor the record of that run does not name"
    elif any(m["drawn_on"] is None for m in checked):
        where += " (and, for some, a machine the records do not name)"
    differing = sum(m["n"] - m["identical"] for m in checked)
    grey, distance = max(m["max_grey_levels"] for m in checked), max(m["max_distance"] for m in checked)
    text = (
        "A stored seed regenerates its sample bit for bit on the kind of processor that drew it. These samples "
        f"were drawn on {where}; regenerated from their stored seeds on {cpu_words(cpu)}, {counts} came out "
        "identical, bit for bit"
    )
    if differing:
        text += (
            f", and the other {differing:,} differ by at most {grey} grey levels of 255 in a "
            f"few pixels (a pixel distance of at most {distance:.3f}, where the book's pixel threshold for a copy "
            f"is {threshold_text(CRITERIA['l2'].default_threshold)}): the same image, not a different one"
        )
    return text + "."


def regenerated_copies_sentence(result) -> str:
    """The randomness experiment's regeneration evidence in words: the copies regenerated from their stored seed
    alone (its `seeds` stage), told apart by whether the regenerating machine was of the kind that drew them (where
    bit-exactness is promised) or not; then `regeneration_sentence`."""
    models = result.summary("seeds")["models"]
    # records written before the stage noted the CPU kinds regenerated on the machine that drew them
    same = [r for m in models if m.get("same_cpu_kind", True) for r in m["regenerated"]]
    other = [r for m in models if not m.get("same_cpu_kind", True) for r in m["regenerated"]]
    text = ""
    if same:
        text += (
            f"Of {len(same):,} copies regenerated from their stored seed alone on the kind of processor that drew "
            f"them, {sum(r['identical'] for r in same):,} came out identical, bit for bit. "
        )
    if other:
        text += (
            f"Of {len(other):,} copies regenerated on another kind of processor than the one that drew them, "
            f"{sum(r['identical'] for r in other):,} came out identical, bit for bit. "
        )
    return text + regeneration_sentence(result)


def excess_share(row: dict) -> dict:
    """A criterion's summary row as the share of copies beyond its baseline: the excess and its Newcombe
    interval, floored at 0 (a model cannot copy less than not at all); `count` is the flagged samples beyond the
    baseline's expectation, rounded, and `n` the samples checked."""
    rate = max(0.0, row["excess"])
    return {
        "rate": rate,
        "ci_low": max(0.0, row["excess_ci_low"]),
        "ci_high": max(0.0, row["excess_ci_high"]),
        "count": round(rate * row["n"]),
        "n": row["n"],
    }


def scale_up_note(rates: dict[str, dict]) -> str:
    """What the scale-up table can and cannot say, from the records it multiplies up (per model: `count`
    copies beyond chance among `n` samples, the 95% interval's `ci_high`)."""
    none = [tag for tag, r in rates.items() if r["count"] == 0]
    text = (
        "The numbers in brackets are not counts of anything observed: they multiply up the 95% confidence "
        "interval of the share, whose upper end is the largest share of copies that the samples checked here "
        "cannot rule out. So the right-hand number in each bracket is an upper bound (at 95% confidence), not a "
        "count. The share is what remains after subtracting how often the same definition calls independent "
        "handwriting a copy, so chance matches are not multiplied up as copies. "
    )
    if none and len(none) == len(rates):
        n = min(rates[tag]["n"] for tag in none)
        text += (
            f"Here no model produced more copies by the {HEADLINE_WORDS} than independent handwriting does, so "
            f"every middle number is 0, and the most the table can say is that {n:,} samples leave room for a "
            f"share of up to {pct(max(rates[tag]['ci_high'] for tag in none))}. "
        )
    elif none:
        names = " and ".join(MODEL_SUBJECTS.get(tag, model_name(tag)) for tag in none)
        text += (
            f"The {names} produced no more copies by the {HEADLINE_WORDS} than independent handwriting does: for "
            f"{'them' if len(none) > 1 else 'it'} the table gives only that bound. "
        )
    return text + (
        "Nor are copies the same as works reproduced: the table counts samples, and several samples can copy the "
        "same training image (the section above counts the different seeds that return the same one), so the number "
        "of distinct works reproduced can be much smaller than the number of copies."
    )


def extraction_sentence(models: list[dict], config: dict) -> str:
    """What the generate-and-filter search found (the storage stage's per-model records and its config):
    how many clusters, and how many of them are real training images, judged by each cluster's medoid."""
    found = sum(m["clusters"] for m in models)
    real = sum(m["clusters_matching_training_images"] for m in models)
    size = config.get("min_cluster", 3)
    if not found:
        return (
            f"Across all models, no {size:,} or more samples were near-identical to each other, so the search found "
            "no cluster to check against the training set."
        )
    text = (
        f"Across all models, the samples formed {found:,} {'cluster' if found == 1 else 'clusters'} of {size:,} or "
        "more near-identical images. Checking the most central sample of each (the one closest, in total, to the "
        f"others) against the training set, {real:,} of {found:,} turned out to be "
        + ("a real training image" if found == 1 else "real training images")
    )
    matched = [
        (m, i)
        for m in models
        for i, distance in enumerate(m.get("cluster_medoid_distance", []))
        if distance <= config.get("radius", float("inf"))
    ]
    if matched:
        m, i = min(matched, key=lambda pair: pair[0]["cluster_medoid_distance"][pair[1]])
        family, _, n = m["model"].partition("_")
        trained = f"trained on {int(n):,} digits" if n else "trained on all 60,000 digits"
        text += (
            f"{'; in the closest match, ' if len(matched) > 1 else ': '}{m['cluster_sizes'][i]:,} samples of the "
            f"{MODEL_SUBJECTS.get(family, family)} {trained} gather around training image "
            f"#{m['cluster_training_index'][i]}, and their central sample lies {m['cluster_medoid_distance'][i]:.2f} "
            "from it"
        )
    return text + "."


def c_t_summary(c_t: dict[str, float]) -> str:
    """One sentence on the main models' C_T values (`{family: C_T}`), each with what its sign means."""
    if not c_t:
        return ""
    parts = [f"C_T = {c_t_text(v)} for the {MODEL_SUBJECTS.get(f, f)}" for f, v in c_t.items()]
    listed = and_list(parts)
    readings = {c_t_reading(v) for v in c_t.values()}
    if len(readings) == 1:
        each = "its" if len(parts) == 1 else "in each case the"
        return f"Meehan's data-copying test, which judges a model as a whole, gives {listed}: {each} samples lie " + (
            f"{readings.pop()}."
        )
    return (
        "Meehan's data-copying test, which judges a model as a whole, gives "
        + "; ".join(f"{part} (its samples lie {c_t_reading(v)})" for part, v in zip(parts, c_t.values(), strict=True))
        + "."
    )


def overall_answer(full_data_clean: bool, small_n: int | None, fewest_copies: int | None) -> str:
    """The book's answer to its question at this scale, from three measured facts: whether the models trained on
    all 60,000 digits stayed at the level of independent handwriting (`full_data_clean`), the smallest training
    set on which the diffusion model emitted copies of its own digits (`small_n`, None if none), and the fewest
    planted copies of a glyph that a model reproduced (`fewest_copies`, None if none)."""
    full = (
        "The models trained on all 60,000 digits emitted no more copies than independent handwriting, so for them "
        "these measurements show no stored copy. "
        if full_data_clean
        else "Even the models trained on all 60,000 digits emitted more copies than independent handwriting. "
    )
    where = []
    if small_n is not None:
        where.append(f"on only {small_n:,} digits")
    if fewest_copies is not None:
        where.append(f"on data in which one image appears {fewest_copies:,} times")
    if not where:
        return full + "No smaller or duplicated training set made a model emit copies at this scale either."
    return (
        full
        + "The same kinds of model trained "
        + " or ".join(where)
        + " emitted particular training images on demand, from seeds that can be stored and replayed: for those "
        "models, what is needed to produce those images is in their weights. Whether a model stores copies is "
        "therefore a property of a particular model and its training data, measurable one model at a time."
    )


#: A method "wrecks" the model when its samples' MNIST-FID exceeds its starting model's by this factor.
WRECKED_FID_FACTOR = 1.5
#: The pixel-distance definition that must agree before the book says the relearning attack brought an item back:
#: the copy descriptor, a learned network, also flags samples unlike anything it was trained on (near-blank images
#: of a wrecked model, measured in the cpu unlearning results) as copies of a thin glyph.
CONFIRMING_CRITERION = "calibrated_l2"


def forgetting_outcome(
    before: tuple[int, int],
    after: tuple[int, int],
    again: tuple[int, int] | None,
    fid_before: float | None = None,
    fid_after: float | None = None,
    control: tuple[int, int] | None = None,
    confirm: tuple[tuple[int, int], tuple[int, int]] | None = None,
) -> str:
    """What one method did to the planted item, as far as the counts can tell (each a pair hits, samples):
    "undecided" when the fall from the starting model's count is within chance (the 95% Newcombe interval of
    the difference reaches zero: 0 of 500 after 2 of 500 before proves nothing); "hidden" when the relearning
    attack (`again`) brought it back significantly above its count after the method and, where the attack's
    `control` is given (the same attack on the retrained model, which never held the item), significantly
    above what the attack teaches that model too; "wrecked" when the item went but the samples' MNIST-FID rose
    more than `WRECKED_FID_FACTOR`-fold (the model forgot how to draw digits too); otherwise "removed" (none
    left) or "reduced" (fewer, but still emitted). `confirm` (the attack's counts on the method's model and on
    the control under `CONFIRMING_CRITERION`): a "hidden" that this pixel-distance definition does not also
    find (its count after the attack not significantly above the control's) is "unconfirmed" instead."""
    if newcombe_difference_interval(*before, *after)[0] <= 0:
        return "undecided"
    if (
        again is not None
        and newcombe_difference_interval(*again, *after)[0] > 0
        and (control is None or newcombe_difference_interval(*again, *control)[0] > 0)
    ):
        if confirm is not None and newcombe_difference_interval(*confirm[0], *confirm[1])[0] <= 0:
            return "unconfirmed"
        return "hidden"
    if fid_before and fid_after and fid_after > WRECKED_FID_FACTOR * fid_before:
        return "wrecked"
    return "removed" if after[0] == 0 else "reduced"


def confirming_counts(relearned: dict | None, control: dict | None):
    """((hits, n) after the attack, (hits, n) of the control) under `CONFIRMING_CRITERION`, or None when a record
    lacks the per-criterion counts."""
    try:
        pair = [record["by_criterion"][CONFIRMING_CRITERION] for record in (relearned, control)]
    except (KeyError, TypeError):
        return None
    return tuple((int(c["hits"]), int(c["n"])) for c in pair)


def method_outcome(row: dict, before: dict, retrained: dict | None) -> str:
    """`forgetting_outcome` of one method's row (`unlearning_facts.method_rows`): against the model it started
    from (its `before`, else the base model's record `before`, whose "fid" stands in for a missing `base_fid`),
    with the relearning attack on the retrained model (`retrained`, its relearned record) as the attack's control
    and `CONFIRMING_CRITERION` as the attack's confirmation; retraining is the control, so it has none."""

    def counts(record: dict | None) -> tuple[int, int] | None:
        return None if record is None else (int(record["hits"]), int(record["n"]))

    is_control = row["method"] == "retrain"
    return forgetting_outcome(
        counts(row.get("before") or before),
        counts(row["forgotten"]),
        counts(row["relearned"]),
        row.get("base_fid") or before.get("fid"),
        row.get("fid"),
        control=None if is_control else counts(retrained),
        confirm=confirming_counts(row["relearned"], retrained),
    )


def unlearning_conclusion(result) -> str:
    """Chapter 8 in two sentences: how often the planted sign came back before and after each method, and after
    the relearning attack; which methods removed it, only reduced it, only hid it, and where the counts are too small
    to tell (`forgetting_outcome`)."""
    from mnistmem.book.unlearning_facts import METHOD_NAMES, before_forgetting, method_rows

    before = before_forgetting(result)["canary"]
    rows = {r["method"]: r for r in method_rows(result) if r["target"] == "canary"}
    parts = []
    outcomes = {"removed": [], "reduced": [], "hidden": [], "unconfirmed": [], "wrecked": [], "undecided": []}

    retrained = (rows.get("retrain") or {}).get("relearned")  # what the attack teaches a model without the item
    for method in ("retrain", "sisa", "finetune", "neggrad"):
        row = rows.get(method)
        if row is None:
            continue
        share, relearned = row["forgotten"]["share"], row["relearned"]
        text = f"{METHOD_NAMES[method]} {pct(share)}"
        if relearned is not None:
            text += f" ({pct(relearned['share'])} after the relearning attack)"
        parts.append(text)
        own_base = row.get("before") or before  # SISA is judged against its own ensemble before forgetting
        outcome = method_outcome(row, before, retrained)
        outcomes[outcome].append(METHOD_NAMES[method])
        if outcome == "undecided" and method == "sisa":  # its own ensemble, not the base model
            parts[-1] += f", whose own model emitted it in {own_base['hits']:,} of {own_base['n']:,} before"
    verdict = []
    if outcomes["removed"]:
        verdict.append("removed by " + " and ".join(outcomes["removed"]))
    if outcomes["reduced"]:
        verdict.append("reduced but still emitted after " + " and ".join(outcomes["reduced"]))
    if outcomes["hidden"]:
        verdict.append("hidden, and brought back by the relearning attack, by " + " and ".join(outcomes["hidden"]))
    if outcomes["unconfirmed"]:
        verdict.append(
            "counted again after the relearning attack for " + " and ".join(outcomes["unconfirmed"]) + " by the copy "
            "descriptor only, which no pixel-distance definition confirms (chapter 8 shows those samples: they do "
            "not look like the sign, a false alarm of the descriptor rather than the sign coming back)"
        )
    if outcomes["wrecked"]:
        verdict.append(
            "gone after " + " and ".join(outcomes["wrecked"]) + ", but only because the model no longer draws "
            "digits well (its MNIST-FID rose more than 1.5-fold)"
        )
    text = (
        f"Before forgetting, the small model emitted the planted sign in {pct(before['share'])} of its samples "
        f"({before['hits']:,} of {before['n']:,}); afterwards: " + "; ".join(parts) + "."
    )
    if verdict:
        text += " At this scale the sign was " + "; ".join(verdict) + "."
    if outcomes["undecided"]:
        text += (
            f" For {' and '.join(outcomes['undecided'])}, the counts cannot tell a change from chance: what its "
            "model emitted before is too few to show that fewer came after."
        )
    return text


def quality_progress_sentence(family: str, summary: dict, criterion_words: str = HEADLINE_WORDS) -> str:
    """What one family's training curve (a `training` curve stage's summary: `targets`, `n`, `curve` rows with
    `epochs`, `recognised_share`, `fid`, `copies`, `c_t`) says: the best quality reached and whether it met its
    targets, and how the copies counted by the headline definition moved as quality rose.

    A target counts as met here by the curve's own numbers, whose FID is of `n` samples (biased upwards against
    the chapter's 10,000-sample figure); the chapter's text around the curve says so."""
    rows, targets, n = summary["curve"], summary["targets"], summary["n"]
    subject = MODEL_SUBJECTS.get(family, family)
    if not rows:
        return f"The {subject} has no kept checkpoints yet, so there is no curve to read."
    best_fid = min(rows, key=lambda r: r["fid"])
    best_share = max(rows, key=lambda r: r["recognised_share"])
    last = rows[-1]

    def epochs(row: dict) -> str:
        value = row["epochs"]
        return f"{value:.0f} {'epoch' if round(value) == 1 else 'epochs'}" if value >= 1 else f"{value:.1f} epochs"

    fid_met = best_fid["fid"] <= targets["fid"]
    share_met = best_share["recognised_share"] >= targets["recognised_share"]
    text = (
        f"The {subject}'s MNIST-FID fell to {best_fid['fid']:.1f} at its best ({epochs(best_fid)}; the bar is "
        f"{threshold_text(targets['fid'])}, {'met' if fid_met else 'not met'}), and the classifier recognised up to "
        f"{100 * best_share['recognised_share']:.1f}% of its samples ({epochs(best_share)}; the bar is "
        f"{100 * targets['recognised_share']:.0f}%, {'met' if share_met else 'not met'}). "
    )
    if last is not best_fid and last["fid"] > best_fid["fid"] * 1.1:
        text += f"By the last checkpoint ({epochs(last)}) its FID had risen again to {last['fid']:.1f}. "
    elif not (fid_met and share_met) and len(rows) >= 3:
        text += _trend_words(rows, epochs)
    first_copies, last_copies = rows[0]["copies"][summary["headline"]], last["copies"][summary["headline"]]
    most = max(rows, key=lambda r: r["copies"][summary["headline"]])
    peak = most["copies"][summary["headline"]]
    if peak == 0:
        text += f"At no checkpoint did the {criterion_words} flag any of its {n:,} samples"
    elif first_copies == last_copies == peak:
        text += f"The {criterion_words} flagged {peak:,} of its {n:,} samples at every checkpoint"
    else:
        text += (
            f"The {criterion_words} flagged {first_copies:,} of its {n:,} samples at the first checkpoint, "
            f"{last_copies:,} at the last"
            + (f" and most, {peak:,}, at {epochs(most)}" if peak not in (first_copies, last_copies) else "")
        )
    c_t = [r["c_t"] for r in rows if r.get("c_t") is not None]
    if len(c_t) >= 2:
        text += f"; Meehan's C_T went from {c_t_text(c_t[0])} to {c_t_text(c_t[-1])}"
    return text + "."


#: Over the last quarter of a curve, an FID that fell by more than this share was still improving; by less
#: than `FLAT_SHARE`, it had stopped.
STILL_IMPROVING_SHARE = 0.10
FLAT_SHARE = 0.03


def _trend_words(rows: list[dict], epochs) -> str:
    """Whether a curve that missed its bar was still improving when training stopped: its FID over the last
    quarter of its epochs (from the first checkpoint at or after three quarters of the final epoch count)."""
    last = rows[-1]
    start = next(r for r in rows if r["epochs"] >= 0.75 * last["epochs"])
    if start is last:
        start = rows[-2]
    change = f"its FID went from {start['fid']:.1f} to {last['fid']:.1f} between {epochs(start)} and {epochs(last)}"
    drop = (start["fid"] - last["fid"]) / start["fid"]
    if drop > STILL_IMPROVING_SHARE:
        return f"It was still improving when training stopped ({change}): more training would bring it closer. "
    if drop < FLAT_SHARE:
        return f"It had stopped improving ({change}): more of the same training would not reach the bar. "
    return f"It was improving only slowly when training stopped ({change}). "


def model_quality_sentence(models: dict[str, dict], reference: dict) -> str:
    """How good the main models are, against the bars the study set them: `models` maps a family to its score
    summary (`confident_share`, `fid`) plus the `targets` its model stage records (`recognised_share`, `fid`);
    `reference` is the real-digit reference (`confident_share`, `fid`). Says plainly which model falls short,
    because a model that writes poor digits says little about whether good models copy."""
    shares = [m["confident_share"] for m in models.values()]
    fids = [m["fid"] for m in models.values()]
    text = (
        f"the digit classifier recognises {pct(min(shares))} to {pct(max(shares))} of their samples as a digit with "
        f"at least 90% confidence (real digits: {pct(reference['confident_share'])}), and their MNIST-FID is "
        f"{min(fids):.1f} to {max(fids):.1f} (real digits: {reference['fid']:.1f}; lower is better)"
    )
    short = {
        family: m
        for family, m in models.items()
        if m["confident_share"] < m["targets"]["recognised_share"] or m["fid"] > m["targets"]["fid"]
    }
    if not short:
        return text + "; each meets the quality bar set for it before its copies were counted"
    parts = [
        f"the {MODEL_SUBJECTS.get(family, family)} ({pct(m['confident_share'])} recognised and FID {m['fid']:.1f}, "
        f"against bars of {100 * m['targets']['recognised_share']:.0f}% and {threshold_text(m['targets']['fid'])})"
        for family, m in short.items()
    ]
    listed = and_list(parts)
    return text + (
        f". Not every model reached the quality bar set for it: {listed} {'falls' if len(parts) == 1 else 'fall'} "
        "short, and better-trained models may behave differently"
    )


def solver_steps_sentence(points: list[dict], curve_rows: list[dict], curve_steps: int, used_steps: int) -> str:
    """What the diffusion model's solver-step measurement says (`training`'s solver_diffusion stage: `points`
    rows with `step`, `solver_steps`, `fid`, `recognised_share`, drawn on the curve's seeds), beside the curve
    drawn with `curve_steps` (`curve_rows`); `used_steps`: the steps the chapter's samples are drawn with.

    The rule: the final checkpoint's FID at each step count measured; then, where an earlier checkpoint was
    measured at the same (largest) step count, which of the two is better there. Only when the final one is
    better does the sentence blame the curve's rise on the sampler; otherwise it says longer training hurt."""
    if not points:
        return ""
    final_step = max(p["step"] for p in points)
    curve_final = next((r for r in curve_rows if r["step"] == final_step), None)
    finals = sorted((p for p in points if p["step"] == final_step), key=lambda p: p["solver_steps"])
    measured = ([(curve_steps, curve_final["fid"])] if curve_final else []) + [
        (p["solver_steps"], p["fid"]) for p in finals if p["solver_steps"] != curve_steps
    ]
    measured.sort()
    listed = [f"{fid:.1f} with {steps} steps" for steps, fid in measured]
    listing = and_list(listed)
    text = f"Drawn from the final model on the same seeds, the MNIST-FID is {listing}"
    top = finals[-1]
    earlier = [p for p in points if p["step"] != final_step and p["solver_steps"] == top["solver_steps"]]
    if earlier:
        other = min(earlier, key=lambda p: p["fid"])
        at = f"at {top['solver_steps']} steps"
        if top["fid"] < other["fid"]:
            text += (
                f"; {at}, the final model also beats the snapshot after {other['step']:,} training steps "
                f"({top['fid']:.1f} against {other['fid']:.1f}). The rise along the chart came from drawing with "
                "too few steps, not from training longer"
            )
        else:
            text += (
                f"; even {at}, the snapshot after {other['step']:,} training steps scores better "
                f"({other['fid']:.1f} against {top['fid']:.1f}): training longer did make this model worse"
            )
    return text + f". This chapter's samples are drawn with {used_steps} steps."


def bound_pct(rate: float) -> str:
    """A small share with two significant digits, so that a 95% bound of a million samples reads as what it is:
    "0.00038%", "0.041%", "1.2%"."""
    return f"{100 * rate:.2g}%" if rate > 0 else "0%"


def census_sentence(family: str, summary: dict) -> str:
    """What one model's census says (a `census` stage summary: `n`, `criteria` rows with `count`,
    `rate_upper_95`, `baseline_rate`, `excess_ci_low`, and `census`): the headline definition's count with the
    most its rate can be at 95%, against the false-alarm rate on independent test digits, and the pixel-distance
    count. A count above the test digits' is called an excess only when its interval says so."""
    from mnistmem.copies import HEADLINE

    by = {row["criterion"]: row for row in summary["criteria"]}
    head, n = by[HEADLINE], summary["n"]
    subject = MODEL_SUBJECTS.get(family, family)
    if head["count"] == 0:
        text = (
            f"Among {n:,} samples of the {subject}, the {HEADLINE_WORDS} found no copy: at 95% confidence, at most "
            f"{bound_pct(head['rate_upper_95'])} of its samples are copies by that definition"
        )
    else:
        text = (
            f"Among {n:,} samples of the {subject}, the {HEADLINE_WORDS} counted {head['count']:,} as copies "
            f"({bound_pct(head['count'] / n)}; at most {bound_pct(head['rate_upper_95'])} at 95% confidence), "
            f"against {pct(head['baseline_rate'])} of independent test digits"
        )
        text += (
            ": more than independent handwriting gives"
            if head["excess_ci_low"] > 0
            else ", no more than independent handwriting gives"
        )
    if "l2" in by:
        l2 = by["l2"]
        text += (
            f"; {l2['count']:,} lie within the pixel-distance threshold"
            if l2["count"]
            else "; none lies within the pixel-distance threshold"
        )
    return text + "."


def strict_flags_sentence(family: str, flags: dict) -> str:
    """What the definitions other than the headline one and the ratio test flag in one model's census, and what
    those flags look like. `flags` (`book.census.strict_flags`): `counts` {criterion: samples it flags},
    `union` (samples any of them flags), `digits` {digit: how many of those have a training image of that digit
    nearest}, `ratio_passed` (how many of them also pass the nearest-neighbour ratio test of Yoon et al. 2023),
    and `stored` / `flagged` (the flagged samples kept with their images, of all flagged; the digits are read off
    the kept ones). Why: a threshold on distance alone also fires on a sample that is merely close to a crowd of
    similar training digits (a thin 1 lies close to thousands of training 1s); the ratio test tells the two
    apart, and a reader should know which kind the flags are before counting them."""
    subject = MODEL_SUBJECTS.get(family, family)
    counts = {name: n for name, n in flags["counts"].items() if n}
    if not counts:
        return f"No definition besides the {HEADLINE_WORDS} flags any sample of the {subject}."
    union = flags["union"]
    text = (
        f"Besides the {HEADLINE_WORDS}, the other definitions flag samples of the {subject} too: "
        + and_list([f"{n:,} by {CRITERION_NAMES.get(c, c)}" for c, n in counts.items()])
        + (f" ({union:,} samples in all)" if len(counts) > 1 else "")
    )
    digits = {int(d): int(n) for d, n in flags["digits"].items() if n}
    top, top_n = max(digits.items(), key=lambda item: item[1])
    read = sum(digits.values())
    kept = "" if flags["stored"] >= flags["flagged"] else f" (of the {read:,} kept with their images)"
    if top_n == read:
        text += f". Every one of them{kept} lies nearest to a training {top}"
    else:
        text += f". {top_n:,} of them{kept} lie nearest to a training {top}"
    if top == 1 and top_n >= 0.8 * read:
        text += ": thin strokes, which lie close to many training 1s at once"
    passed = flags["ratio_passed"]
    if passed == 0:
        text += (
            f". None of them passes the {CRITERION_NAMES['nn_ratio']} test, which asks that a sample be far "
            "closer to one training image than to any other: they are near a crowd, not near one digit."
        )
    else:
        text += (
            f". {passed:,} of them also pass the {CRITERION_NAMES['nn_ratio']} test, which asks that a sample be "
            "far closer to one training image than to any other: those are the candidates for true copies."
        )
    return text


def per_digit_sentence(shares: dict[str, list[float]], training_share: list[float]) -> str:
    """Which digit each model makes most too often and most too rarely, against the training set. `shares`:
    {family: the share of its census samples whose nearest training image is each digit 0-9}; `training_share`:
    each digit's share of the training set. Why: a model that leans towards some digits is not spreading its
    samples as the training set does, and that is where a per-digit copy count should be read first."""
    parts = []
    for family, share in shares.items():
        ratio = [s / t for s, t in zip(share, training_share, strict=True)]
        high = max(range(10), key=lambda d: ratio[d])
        low = min(range(10), key=lambda d: ratio[d])
        parts.append(
            f"the {MODEL_SUBJECTS.get(family, family)} makes too many {high}s ({pct(share[high])} of its samples "
            f"against {pct(training_share[high])} of the training digits) and too few {low}s "
            f"({pct(share[low])} against {pct(training_share[low])})"
        )
    return "Measured against the training set, " + "; ".join(parts) + "."


def census_conclusion(summaries: dict[str, dict]) -> str:
    """One sentence on the census for the conclusions: for each model ({family: its census stage summary}), how
    many samples were searched, and whether the headline definition's rate lies above, at or below its false-alarm
    rate on independent test digits (by the interval of the difference, `excess_ci_low` / `excess_ci_high`)."""
    from mnistmem.copies import HEADLINE

    searched = and_list(
        [f"{summary['n']:,} samples of the {MODEL_SUBJECTS.get(f, f)}" for f, summary in summaries.items()]
    )
    verdicts = {"above": [], "level": [], "below": []}
    for family, summary in summaries.items():
        head = next(r for r in summary["criteria"] if r["criterion"] == HEADLINE)
        key = "above" if head["excess_ci_low"] > 0 else "below" if head["excess_ci_high"] < 0 else "level"
        verdicts[key].append(f"the {MODEL_SUBJECTS.get(family, family)} ({bound_pct(head['count'] / summary['n'])})")
    words = {
        "above": "above the rate it gives independent test digits, beyond chance",
        "level": "no different from the rate it gives independent test digits",
        "below": "below the rate it gives independent test digits",
    }
    parts = [f"{words[key]} for {and_list(names)}" for key, names in verdicts.items() if names]
    return f"Searching {searched}, the {HEADLINE_WORDS}'s copy rate was " + "; and ".join(parts) + "."


def _line_words(line: dict) -> tuple[str, bool]:
    """A fitted onset line in words, and whether it supports the law: a rising line over at least three sizes,
    R² of at least 0.8, and no run whose budget already passed the line's prediction without copying."""
    holds = line["slope"] > 0 and len(set(line["sizes"])) >= 3 and line["r2"] >= 0.8 and not line["censored_below_line"]
    text = (
        f"a straight line through the onsets rises by {line['slope']:.2g} steps per training digit "
        f"(R² {line['r2']:.2f}, {len(set(line['sizes']))} sizes)"
    )
    if line["censored_below_line"]:
        text += (
            ", but "
            + and_list([f"{n:,}" for n in line["censored_below_line"]])
            + " digits trained past the line's prediction without copying"
        )
    return text, holds


def onset_sentence(families: dict[str, dict]) -> str:
    """Whether copying began later for larger training sets, in plain words, from the `onset` stage's
    `families` ({family: `onsets`, `line`, optionally `line_all` and `gate`}): per family the sizes that began to
    copy and when, those that did not within their budget, and which runs stayed below the quality gate (with the
    best share they reached, so a model a little short of the gate is not described as drawing noise); then
    whether a straight line in n fits the onsets of the runs that met the gate (Bonnaire et al. 2025: onset time
    grows linearly with n) and, where runs below the gate add sizes, what the line over all runs says, flagged
    as resting on them. The law is said to hold only under `_line_words`' conditions."""
    parts = []
    for family, found in families.items():
        subject = MODEL_SUBJECTS.get(family, family)
        gate = found.get("gate")
        onsets = sorted([o for o in found["onsets"] if o.get("run", "a") == "a"], key=lambda o: o["n"])

        def short(runs: list[dict], gate: float | None = gate) -> str:
            shares = and_list([f"{100 * o.get('best_quality', 0.0):.0f}%" for o in runs])
            asked = f", against the {100 * gate:.0f}% the gate asks" if gate is not None else ""
            return f"at best {shares} of its samples recognised as handwritten digits{asked}"

        def within(runs: list[dict]) -> str:
            budgets = {o["budget"] for o in runs}
            if len(budgets) == 1:
                return f"{budgets.pop():,} steps on " + and_list([f"{o['n']:,}" for o in runs]) + " digits"
            return and_list([f"{o['budget']:,} steps on {o['n']:,} digits" for o in runs])

        began = [o for o in onsets if o["learned"] and o["step"] is not None]
        began_below = [o for o in onsets if not o["learned"] and o["step"] is not None]
        waited = [o for o in onsets if o["learned"] and o["step"] is None]
        waited_below = [o for o in onsets if not o["learned"] and o["step"] is None]
        clauses = []
        if began:
            clauses.append(
                "began to copy after " + and_list([f"{o['step']:,} steps on {o['n']:,} digits" for o in began])
            )
        if began_below:
            clauses.append(
                "began to copy after "
                + and_list([f"{o['step']:,} steps on {o['n']:,} digits" for o in began_below])
                + f", though there its samples stayed short of the quality gate ({short(began_below)})"
            )
        if waited:
            clauses.append("had not begun within " + within(waited))
        if waited_below:
            clauses.append(
                "had not begun within "
                + within(waited_below)
                + f", where its samples stayed short of the quality gate ({short(waited_below)})"
            )
        text = f"The {subject} " + "; it ".join(clauses) + "."
        passes = [o["passes_at_onset"] for o in began + began_below if o.get("passes_at_onset")]
        if len(passes) >= 2 and max(passes) <= 1.25 * min(passes):
            text += (
                " Whatever the number of digits, copying was first seen at the checkpoint where each digit had been "
                f"seen about {float(f'{statistics.median(passes):.2g}'):,.0f} times."
            )
        line, line_all = found.get("line"), found.get("line_all")
        gated_holds = False
        if line is None:
            if began:
                text += (
                    " Fewer than two sizes that met the quality gate began to copy, so no line can be fitted to "
                    "them alone."
                )
        else:
            words, gated_holds = _line_words(line)
            text += f" Over the runs that met the quality gate, {words}" + (
                ": here copying begins later in proportion to the training set, as Bonnaire and colleagues predict."
                if gated_holds
                else ": not enough to say that copying begins later in proportion to the training set, as "
                "Bonnaire and colleagues predict."
            )
        extra = line_all is not None and set(line_all["sizes"]) != set(line["sizes"] if line else [])
        if extra and not gated_holds:
            words, holds = _line_words(line_all)
            text += f" Counting the runs below the gate as well, {words}" + (
                ": copying begins later in proportion to the training set, as Bonnaire and colleagues predict, "
                "though this rests on models that had not yet met the quality gate."
                if holds
                else ": still not enough to say that copying begins later in proportion to the training set."
            )
        parts.append(text)
    return " ".join(parts)


def same_noise_sentence(summary: dict) -> str:
    """What two models trained on disjoint halves do with the same noise (a `same_noise` stage summary): how far
    apart their two samples of a seed lie, and how often each sample is nearer to its own half's digits than to
    the other half's (Kadkhodaie et al. 2024: at small n each reproduces its own images; at large n both draw
    nearly the same image)."""
    a, b = summary["halves"]
    own = min(a["median_to_own"], b["median_to_own"])
    good = [gate_share(h["recognised_share"], h.get("handwriting_share")) for h in (a, b)]
    text = (
        f"With {summary['half_size']:,} digits in each half, the two models' samples from the same noise lie a "
        f"median {summary['median_between']:.2f} apart (pixel distance), and a sample is nearer to a digit of its "
        f"own half than to any of the other half's for {pct(a['closer_to_own_share'])} (model A) and "
        f"{pct(b['closer_to_own_share'])} (model B) of the seeds"
    )
    if min(a["closer_to_own_share"], b["closer_to_own_share"]) >= 0.8 and summary["median_between"] > own:
        text += ": each model reproduces its own training digits, and the noise only picks which."
    elif summary["median_between"] < own and min(good) >= 0.9:
        text += (
            f", closer to each other than either is to its nearest training digit (median {own:.2f}): from the "
            "same noise both draw nearly the same digit though they share no training digit, so what they hold "
            "is what the two halves have in common, not copies of either."
        )
    elif summary["median_between"] < own:
        text += (
            f", closer to each other than either is to its nearest training digit (median {own:.2f}); but only "
            f"{pct(good[0])} and {pct(good[1])} of their samples are recognised as handwritten digits, so the two "
            "models agree on images that are not all digits yet."
        )
    else:
        text += "."
    return text


def dose_sentence(families: dict[str, dict]) -> str:
    """The dose-response in words, from the `dose` stage's `families` ({family: {"runs", "points"}}): per family,
    the smallest count at which the pooled share of reproductions (ratio test) is above zero at 95% confidence,
    with the count behind it (one sample can be all there is), the share at the largest count, how far apart
    the single canaries of that count lie, and the share of samples that resemble such a canary most."""
    parts = []
    for family, curve in families.items():
        points = sorted(curve["points"], key=lambda p: p["count"])
        subject = MODEL_SUBJECTS.get(family, family)
        rows = [(p, p["by_criterion"]["nn_ratio"]) for p in points]
        first = next((p for p, r in rows if r["ci_low"] > 0), None)
        top, top_row = rows[-1]
        spread = [q["share"] for q in top_row["per_canary"]]
        text = f"the {subject} reproduced "
        if first is None:
            text += f"no canary, even one planted {top['count']:,} times"
        else:
            first_row = first["by_criterion"]["nn_ratio"]
            drawn = first["samples"] * len(curve.get("runs", [None])) // first["canaries"]
            text += (
                f"canaries from {first['count']:,} copies on ({first_row['reproduced']:,} reproduction"
                f"{'s' if first_row['reproduced'] != 1 else ''} among {drawn:,} samples there), and at "
                f"{top['count']:,} copies each canary came back in {pct(top_row['share'])} of its samples on "
                f"average (single canaries from {pct(min(spread))} to {pct(max(spread))})"
            )
        resembling = top["by_criterion"].get("nearest_is_canary")
        if resembling is not None:
            text += (
                f", while {pct(resembling['share'])} of its samples resembled such a canary more than any digit, "
                "copy or not"
            )
        parts.append(text)
    text = "By the nearest-neighbour ratio test, " + "; ".join(parts) + "."
    return text


def seed_share_sentence(summary: dict) -> str:
    """The `seed_share` stage in words: how many seeds drew a copy, the share each training digit would get if
    the copies were spread evenly, the most reproduced digit's share of all seeds with its interval, and how
    many digits come back more often than even, less often, and never."""
    n, digits = summary["n"], summary["training_digits"]
    if not summary["copies"]:
        return (
            f"None of {n:,} seeds of the model trained on {digits:,} digits drew a copy by the ratio test, so at "
            "this scale there is no share to measure."
        )
    top = summary["digits"][0]
    low, high = summary["copy_ci"]
    one_in = 1 / top["share"]
    text = (
        f"Of {n:,} seeds of the model trained on {digits:,} digits, {pct(summary['copy_share'])} "
        f"({pct(low)} to {pct(high)}) drew a copy of one of its digits by the ratio test (test digits judged "
        f"against the same {digits:,}: {pct(summary['test_false_alarm_share'])}). Spread evenly, those copies "
        f"would bring each digit back from {pct(summary['even_share'])} of all seeds. Training digit "
        f"#{top['source']} came back from {pct(top['share'])} ({pct(top['ci_low'])} to {pct(top['ci_high'])}), "
        f"about one seed in {one_in:,.0f}; "
    )
    above, below, never = summary["digits_above_even"], summary["digits_below_even"], summary["digits_never"]
    text += (
        f"{above:,} of the {digits:,} digits came back more often than an even spread would give (95% confidence), "
        f"{below:,} less often"
        + (f", and {never:,} never." if never else "; every one of them came back at least once.")
    )
    p = summary.get("uniform_p_value")
    if p is not None and p < 0.001:
        text += " The copies are not spread evenly: the model favours some of its digits."
    elif p is not None:
        text += " An even spread cannot be ruled out at this sample size."
    return text
