"""Chapter 9 (copies in law): each legal test of "copy" or "storage" beside the measurement that answers the
factual question it asks, for MNIST, under each definition of a copy.

Why a module of its own: the chapter is for lawyers, so its code cells stay one line each, and every number its
prose quotes must come from the committed results (`data/results`), never be typed by hand. The functions here
read those results through `mnistmem.results` (as the other modules of `mnistmem.book` do), put them into sentences
with the scale stated, glue them for the prose, and build one static control (two drop-down lists and a gallery,
plain HTML and a few lines of JavaScript) that works in the static book without a kernel.

A *measurement* is a function `(chapter, criterion) -> Measurement`: the numbers it read (named, so tests can
compare them with the results files), one sentence saying them, and a gallery of the images behind them. A legal
test (`LEGAL_TESTS`) names the factual question and the measurement that answers it. Nothing here trains or
samples a model, and nothing here draws a legal conclusion.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mnistmem.book import dose as dose_views
from mnistmem.book import figures
from mnistmem.book import onset as onset_views
from mnistmem.book.common import (
    CRITERION_NAMES,
    MODEL_NOUNS,
    and_list,
    main_model_quality,
    pct,
    scale_note,
    stage_samples,
    stage_table,
    training_digits,
)
from mnistmem.book.display import glue, show_html
from mnistmem.book.sentences import regeneration_sentence
from mnistmem.copies import CRITERIA, HEADLINE, nearest_under

#: The experiments the chapter reads (its `chapter.setup` call lists them literally, as every chapter does).
EXPERIMENTS = ["main", "small", "onset", "dose", "randomness", "storage", "unlearning", "calibration", "extraction"]
#: The definitions offered in the control, the book's headline definition first.
DEFINITIONS = (HEADLINE, *(c for c in CRITERION_NAMES if c != HEADLINE))
#: The model trained on few digits that the chapter uses as the case where copying is plain.
SMALL = "diffusion_100"
FULL_MODELS = ("gan", "vae", "diffusion")
#: The families the duplication (dose) experiment trained.
DOSE_FAMILIES = ("diffusion", "gan")
#: Bytes per stored parameter (32-bit floats, as `experiments.storage` counts them).
BYTES_PER_PARAMETER = 4
GALLERY_PAIRS = 6
COUNT_WORDS = {2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six"}


@dataclass(frozen=True)
class LegalTest:
    """One legal test: where it comes from, the factual question it asks in plain words, and the measurement
    (a key of `MEASUREMENTS`) that answers that question for MNIST."""

    key: str
    label: str
    source: str
    question: str
    measurement: str


LEGAL_TESTS = (
    LegalTest(
        "us_copies",
        'US: "copies" (17 U.S.C. § 101)',
        "17 U.S.C. § 101, definition of “copies”",
        "Is there a material object from which the work can be perceived or reproduced, directly or with the aid "
        "of a machine? Here: can a particular training image be reproduced from the model by running it?",
        "census",
    ),
    LegalTest(
        "us_fixation",
        'US: "fixed", more than transitory (MAI; Cartoon Network)',
        "17 U.S.C. § 101, definition of “fixed”; MAI Systems v. Peak Computer (9th Cir. 1993); Cartoon Network v. "
        "CSC Holdings (2d Cir. 2008)",
        "Is the embodiment stable enough to be reproduced for more than a transitory duration? Here: does the "
        "same training image come back again and again, from a file that persists, and does a stored seed "
        "regenerate it exactly?",
        "fixation",
    ),
    LegalTest(
        "us_office",
        "US Copyright Office, Part 3 report (May 2025)",
        "U.S. Copyright Office, Copyright and Artificial Intelligence, Part 3: Generative AI Training "
        "(pre-publication version, 9 May 2025)",
        "Can the model generate identical or nearly identical copies of training works without that expression "
        "being given in the prompt? Here the models take no prompt at all: how many samples are near-identical "
        "to a training image?",
        "census",
    ),
    LegalTest(
        "uk_storage",
        'UK: "storing ... by electronic means"; "infringing copy" (Getty)',
        "CDPA 1988 s. 17 and ss. 22, 23, 27; Getty Images v. Stability AI (High Court, 4 November 2025)",
        "Do the weights store the works? The experts in Getty pointed to the weights being far smaller than the "
        "training data. Here: how large are the weights against the data, and can specific images nonetheless be "
        "reconstructed from them?",
        "size",
    ),
    LegalTest(
        "eu_reproduction",
        'EU/Germany: reproduction "by any means and in any form" (GEMA)',
        "§ 16 UrhG; Art. 2 Directive 2001/29/EC; GEMA v. OpenAI (LG München I, 11 November 2025, 42 O 14139/24)",
        "Is a work retrievable from the model's parameters in recognisable form, in whole or in part? Here: is a "
        "work that appears many times in the training data reproduced by the model, and how often?",
        "duplication",
    ),
    LegalTest(
        "eu_tdm",
        "EU/Germany: the text-and-data-mining exception's limit (GEMA)",
        "Art. 4 Directive (EU) 2019/790; § 44b UrhG; GEMA v. OpenAI (LG München I, 11 November 2025)",
        "Did training only extract information about the data (patterns), or does the model retain the works "
        "themselves (memorisation)? Here: do samples fall closer to the model's own training images than "
        "independent handwriting does, and how does that change with the number of training images?",
        "patterns",
    ),
    LegalTest(
        "gdpr",
        "GDPR Art. 17 erasure; EDPB Opinion 28/2024",
        "GDPR Art. 17; EDPB Opinion 28/2024 (adopted 17 December 2024)",
        "Can an item of the training data be extracted from the model, including probabilistically, or obtained "
        "by querying it; and after an attempt to erase it, can it still?",
        "erasure",
    ),
)


@dataclass
class Measurement:
    """What one measurement says under one definition: the `numbers` it read from the results (named), a
    `sentence` that states them with their scale, and a `gallery` (HTML) of the images behind them."""

    key: str
    criterion: str
    numbers: dict = field(default_factory=dict)
    sentence: str = ""
    gallery: str = ""


def definition_name(criterion: str) -> str:
    return CRITERION_NAMES.get(criterion, criterion)


def _row(criteria: list[dict], criterion: str) -> dict:
    return next(r for r in criteria if r["criterion"] == criterion)


def _strongest_first(scores: np.ndarray, criterion: str) -> np.ndarray:
    """Sample order from the most to the least copy-like by `criterion` (distances small, similarities large)."""
    values = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=np.inf if _below(criterion) else -np.inf)
    return np.argsort(values if _below(criterion) else -values, kind="stable")


def _below(criterion: str) -> bool:
    return CRITERIA[criterion].direction == "below"


def _gallery(strip: np.ndarray, alt: str, caption: str) -> str:
    return (
        f"<figure class='mnistmem-law-gallery'><img src='{figures.png_data_uri(strip)}' alt='{html.escape(alt)}' "
        f"style='image-rendering:pixelated;max-width:100%;width:{3 * strip.shape[1]}px'>"
        f"<figcaption><small>{html.escape(caption)}</small></figcaption></figure>"
    )


def _times(data_bytes: float, weight_bytes: float) -> str:
    """How the data compare with the weights: "44 times its weights", or "a quarter of ..." style shares."""
    if data_bytes >= weight_bytes:
        return f"{data_bytes / weight_bytes:,.0f} times its weights"
    return f"{100 * data_bytes / weight_bytes:.0f}% of its weights"


def _same_architecture(a: int, b: int) -> str:
    """ "the same diffusion architecture" when two diffusion models have weights of one size, else "a diffusion
    model" (the scales may use different sizes)."""
    return "the same diffusion architecture" if a == b else "a diffusion model"


def _listed(values) -> str:
    """[0, 0, 206] -> "0, 0 and 206"."""
    words = [f"{v:,}" for v in values]
    return and_list(words)


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.2f} MB"


def _kb(n_bytes: float) -> str:
    return f"{n_bytes / 1e3:,.1f} kB"


def _size_text(n_bytes: float) -> str:
    return _mb(n_bytes) if n_bytes >= 1e6 else _kb(n_bytes)


# --------------------------------------------------------------------------------------------- reading
@lru_cache(maxsize=4)
def _own_training_set(data_config: str):
    from mnistmem.dataspec import DataSpec

    return DataSpec.from_dict(json.loads(data_config)).build()


def small_model(ch):
    """The 100-digit diffusion model: its samples, its table against its own training set, that set's images
    and their MNIST numbers."""
    from mnistmem.results import OWN_TABLE_FILE

    result = ch["small"]
    table = result.table(f"score_{SMALL}", OWN_TABLE_FILE)
    built = _own_training_set(json.dumps(result.stage(f"score_{SMALL}")["config"]["data"], sort_keys=True))
    images, seeds = stage_samples(result, f"sample_{SMALL}")
    return images, seeds, table, built.images, built.sources


def small_n(ch) -> int:
    """How many digits the small diffusion model was trained on (its own-training-set record)."""
    return ch["small"].summary(f"score_{SMALL}")["against_own_training_set"]["n_train"]


def small_source(ch) -> tuple:
    """(experiment result, training stage) that trained the small diffusion model (the `onset` grid's run the
    `small` experiment samples): where its architecture and training set are recorded."""
    from mnistmem.experiments.stages import drawn_from

    source, stage, _ = drawn_from(ch["small"], f"sample_{SMALL}")
    return source, stage


def weights_bytes(result, train_stage: str) -> int:
    """Bytes of a trained model's sampling network, from its recorded architecture (`results.sampler_size`)."""
    return result.sampler_size(train_stage)[1] // 8


def training_bytes(result, train_stage: str) -> tuple[int, int]:
    """(images, bytes as raw pixels, one byte each) of the training set a training stage used."""
    config = result.stage(train_stage)["config"]["train"]["data"]
    digits = config.get("n") or len(training_digits())
    images = digits + sum(c["count"] for c in config.get("canaries", []))
    return images, images * int(np.prod(training_digits().shape[1:]))


# ------------------------------------------------------------------------------------------ measurements
def census(ch, criterion: str) -> Measurement:
    """Which training images come back out: the three models trained on all 60,000 digits (against independent
    handwriting's false-alarm rate), and the diffusion model trained on 100 digits (against its own 100)."""
    main = ch["main"]
    m = Measurement("census", criterion)
    full = {f: _row(main.summary(f"score_{f}")["criteria"], criterion) for f in FULL_MODELS}
    for f, row in full.items():
        m.numbers[f"full_{f}_count"] = row["count"]
        m.numbers[f"full_{f}_n"] = row["n"]
    m.numbers["full_false_alarm_rate"] = full["diffusion"]["baseline_rate"]
    beyond = [f for f, row in full.items() if row["excess_ci_low"] > 0]
    m.numbers["full_models_beyond_false_alarms"] = len(beyond)
    images, _, table, own_images, sources = small_model(ch)
    summary = ch["small"].summary(f"score_{SMALL}")
    own = _row(summary["against_own_training_set"]["criteria"], criterion)
    flagged = np.flatnonzero(table.flags[criterion])
    nearest = nearest_under(table, criterion)
    distinct = np.unique(nearest[flagged])
    m.numbers.update(
        small_count=own["count"],
        small_n=own["n"],
        small_false_alarm_rate=own["baseline_rate"],
        small_beyond_false_alarms=own["excess_ci_low"] > 0,
        small_training_images=summary["against_own_training_set"]["n_train"],
        small_distinct_reproduced=len(distinct),
    )
    name = definition_name(criterion)
    counts = ", ".join(f"{full[f]['count']:,} of {full[f]['n']:,} {MODEL_NOUNS[f]} samples" for f in FULL_MODELS)
    m.sentence = (
        f"Trained on all 60,000 digits: by the {name}, {counts} count as copies; the same definition calls "
        f"{pct(m.numbers['full_false_alarm_rate'])} of independent test digits copies (its false-alarm rate), so "
        + (
            "no model produces more copies than independent handwriting does. "
            if not beyond
            else f"{len(beyond)} of the 3 models produce more copies than independent handwriting does. "
        )
        + f"Trained on {m.numbers['small_training_images']:,} digits, "
        + _same_architecture(weights_bytes(main, "model_diffusion"), weights_bytes(*small_source(ch)))
        + ": "
        f"{own['count']:,} of {own['n']:,} samples ({pct(own['rate'])}) are copies of its own training digits, "
        f"against {pct(own['baseline_rate'])} of test digits judged against the same "
        f"{m.numbers['small_training_images']:,}"
        + ("" if own["excess_ci_low"] > 0 else " (no more than that false-alarm rate)")
        + f"; the copies reproduce {len(distinct):,} of its {m.numbers['small_training_images']:,} training images."
    )
    order = [i for i in _strongest_first(table.scores[criterion], criterion)][:GALLERY_PAIRS]
    shown = "copies by this definition" if len(flagged) else "none is a copy by this definition; the closest"
    m.gallery = _gallery(
        figures.pair_strip(images[order], own_images[nearest[order]]),
        f"samples of the diffusion model trained on {small_n(ch):,} digits beside their nearest training image, {name}",
        f"Diffusion model trained on {m.numbers['small_training_images']:,} digits, {shown}: each row sample | its "
        "nearest own training image (by this definition) | difference. Training images "
        + ", ".join(f"#{sources[j]}" for j in nearest[order])
        + ".",
    )
    diffusion_images, _ = stage_samples(main, "sample_diffusion")
    diffusion_table = stage_table(main, "score_diffusion")
    top = _strongest_first(diffusion_table.scores[criterion], criterion)[:3]
    m.gallery += _gallery(
        figures.pair_strip(diffusion_images[top], training_digits()[nearest_under(diffusion_table, criterion)[top]]),
        f"the diffusion model trained on 60,000 digits: its three most copy-like samples, {name}",
        "Diffusion model trained on all 60,000 digits: its three most copy-like samples by this definition, beside "
        "their nearest training images.",
    )
    return m


def fixation(ch, criterion: str) -> Measurement:
    """Whether the same training image comes back from many different random seeds (the 100-digit diffusion
    model, judged against all 60,000 digits as the randomness experiment does), and whether a stored seed
    regenerates a sample bit for bit (the randomness experiment's regeneration stage)."""
    result = ch["small"]
    m = Measurement("fixation", criterion)
    images, seeds = stage_samples(result, f"sample_{SMALL}")
    table = stage_table(result, f"score_{SMALL}")
    flagged = np.flatnonzero(table.flags[criterion])
    nearest = nearest_under(table, criterion)[flagged]
    index = np.unique(nearest)
    seeds_per = np.array([len(np.unique(seeds[flagged[nearest == j]])) for j in index], dtype=int)
    several = int((seeds_per >= 2).sum())
    m.numbers.update(
        samples=len(images),
        copies=len(flagged),
        distinct_reproduced=len(index),
        reproduced_by_several_seeds=several,
        most_seeds=int(seeds_per.max()) if len(index) else 0,
        weights_bytes=weights_bytes(*small_source(ch)),
    )
    regenerated = ch["randomness"].summary("regeneration")["models"]
    m.numbers["regenerated"] = sum(r.get("n", 0) for r in regenerated)
    m.numbers["regenerated_identical"] = sum(r.get("identical", 0) for r in regenerated)
    name = definition_name(criterion)
    text = (
        f"The diffusion model trained on {small_n(ch):,} digits keeps what training fixed in a file of weights "
        f"({_mb(m.numbers['weights_bytes'])}); drawing a sample adds only a random seed. Of its {len(images):,} "
        f"samples, {len(flagged):,} are copies by the {name} (judged against all 60,000 training digits); they "
        f"reproduce {len(index):,} different training images"
    )
    if len(index):
        j = int(np.argmax(seeds_per))
        m.numbers["most_seeds_image"] = int(index[j])
        text += (
            f", {several:,} of them from two or more different random seeds, and training image #{index[j]} from "
            f"{seeds_per[j]:,} different seeds"
        )
    m.sentence = text + ". " + regeneration_sentence(ch["randomness"])
    if len(index):
        j = int(np.argmax(seeds_per))
        own = flagged[nearest == index[j]][: GALLERY_PAIRS + 1]
        strip = figures.mosaic(np.concatenate([training_digits()[index[j]][None], images[own]]), columns=len(own) + 1)
        m.gallery = _gallery(
            strip,
            f"training image #{index[j]} and samples from different seeds that copy it",
            f"Left: training image #{index[j]}. Then {len(own):,} of the samples, each from its own random seed, that "
            f"the {name} calls copies of it (diffusion model trained on {small_n(ch):,} digits; seeds "
            + ", ".join(str(s) for s in seeds[own])
            + ").",
        )
    else:
        m.gallery = "<p><small>No sample is a copy by this definition, so there is no image to show.</small></p>"
    return m


def size(ch, criterion: str) -> Measurement:
    """The size argument: bytes of weights against bytes of training data, with what can nonetheless be
    reconstructed: nothing beyond chance from the models trained on all 60,000 digits; stroke canaries planted
    many times (the dose experiment) from models whose weights are smaller than their training data."""
    main, storage, dose = ch["main"], ch["storage"], ch["dose"]
    m = Measurement("size", criterion)
    models = {r["model"]: r for r in storage.summary("storage")["models"]}
    full_images, full_bytes = training_bytes(main, "model_diffusion")
    m.numbers.update(full_training_images=full_images, full_training_bytes=full_bytes)
    for f in FULL_MODELS:
        m.numbers[f"full_{f}_weights_bytes"] = models[f]["weight_bits"] // 8
        m.numbers[f"full_{f}_parameters"] = models[f]["parameters"]
    full_census = census_numbers(ch, criterion)
    m.numbers["full_models_beyond_false_alarms"] = full_census["full_models_beyond_false_alarms"]
    dose_images, dose_bytes = training_bytes(dose, "train_diffusion")
    m.numbers.update(dose_training_images=dose_images, dose_training_bytes=dose_bytes)
    for family in DOSE_FAMILIES:
        top = dose_views.largest_count(dose, family)
        row = top["by_criterion"][criterion]
        m.numbers[f"dose_{family}_weights_bytes"] = weights_bytes(dose, f"train_{family}")
        m.numbers[f"dose_{family}_share"] = row["share"]
        m.numbers[f"dose_{family}_reproduced"] = row["reproduced"]
        m.numbers["dose_planted"] = top["count"]
        # canaries planted that often in one training set: the pooled point counts each run's once
        m.numbers[f"dose_{family}_canaries"] = dose_views.canaries_per_run(dose, top, family)
    name = definition_name(criterion)
    w = m.numbers["full_diffusion_weights_bytes"]
    smallest = min(m.numbers[f"full_{f}_weights_bytes"] for f in FULL_MODELS)
    largest = max(m.numbers[f"full_{f}_weights_bytes"] for f in FULL_MODELS)
    dw = m.numbers["dose_diffusion_weights_bytes"]
    reproduced = [f for f in DOSE_FAMILIES if m.numbers[f"dose_{f}_reproduced"]]
    m.sentence = (
        f"The three models trained on all 60,000 digits have weights of {_mb(smallest)} to {_mb(largest)} "
        f"(the diffusion model: {m.numbers['full_diffusion_parameters']:,} numbers of {BYTES_PER_PARAMETER} bytes, "
        f"{_mb(w)}); the {full_images:,} training images take {_mb(full_bytes)} as raw pixels, "
        f"{_times(full_bytes, w).replace('its', 'the diffusion model’s')}. By the {name}, "
        + (
            "none of the three produces more copies than independent handwriting does: for these models, at this "
            "scale, the measurements agree with the premise the experts in Getty shared. "
            if not m.numbers["full_models_beyond_false_alarms"]
            else f"{m.numbers['full_models_beyond_false_alarms']} of them produce more copies than independent "
            "handwriting does. "
        )
        + f"In the duplication experiment, {_same_architecture(w, dw)} ({_mb(dw)} of weights) was trained on "
        f"{dose_images:,} images ({_mb(dose_bytes)}, {_times(dose_bytes, dw)}), among them "
        f"{m.numbers['dose_diffusion_canaries']} pen-stroke canaries planted {m.numbers['dose_planted']:,} times "
        f"each; by the {name}, each comes back in "
        + " and in ".join(
            f"{pct(m.numbers[f'dose_{f}_share'])} of the {MODEL_NOUNS[f]} samples"
            + (" on average" if f == DOSE_FAMILIES[0] else "")
            + (f" (GAN weights {_mb(m.numbers['dose_gan_weights_bytes'])})" if f == "gan" else "")
            for f in DOSE_FAMILIES
        )
        + ". "
        + (
            "Smaller weights than data did not stop particular, much-repeated images from being reconstructed."
            if reproduced
            else "By this definition, no sample reproduces them."
        )
    )
    m.gallery = "".join(_canary_strip(ch, f) for f in DOSE_FAMILIES)
    return m


def full_verdict(ch) -> str:
    """Whether any definition finds more copies than independent handwriting in any model trained on all
    60,000 digits: the Getty premise, tested."""
    beyond = {c: census_numbers(ch, c)["full_models_beyond_false_alarms"] for c in DEFINITIONS}
    if not any(beyond.values()):
        return (
            f"under none of the {len(DEFINITIONS)} definitions does any of the {len(FULL_MODELS)} models produce more "
            "copies than independent handwriting does"
        )
    named = [f"{definition_name(c)} ({n} of {len(FULL_MODELS)} models)" for c, n in beyond.items() if n]
    return "some definitions find more copies than independent handwriting does: " + ", ".join(named)


def duplication_verdict(ch) -> str:
    """How the duplication (dose) experiment bears on the size argument: the weights against the data, and
    whether the most-planted canaries come back (headline definition)."""
    m = size(ch, HEADLINE)
    ratio = m.numbers["dose_training_bytes"] / m.numbers["dose_diffusion_weights_bytes"]
    text = (
        "In the duplication experiment the diffusion model's training data take "
        f"{_times(ratio, 1).replace('its weights', 'the space of its weights')}, "
    )
    if m.numbers["dose_diffusion_reproduced"]:
        return text + (
            f"and yet each pen-stroke canary planted {m.numbers['dose_planted']:,} times comes back in "
            f"{pct(m.numbers['dose_diffusion_share'])} of its samples on average, by the {definition_name(HEADLINE)}."
        )
    return text + (
        f"and no sample reproduces a canary planted {m.numbers['dose_planted']:,} times by the "
        f"{definition_name(HEADLINE)}."
    )


def census_numbers(ch, criterion: str) -> dict:
    """The full-data models' counts by `criterion` and whether any exceeds independent handwriting."""
    main = ch["main"]
    rows = {f: _row(main.summary(f"score_{f}")["criteria"], criterion) for f in FULL_MODELS}
    return {
        **{f"full_{f}_count": rows[f]["count"] for f in FULL_MODELS},
        "full_false_alarm_rate": rows["diffusion"]["baseline_rate"],
        "full_models_beyond_false_alarms": sum(rows[f]["excess_ci_low"] > 0 for f in FULL_MODELS),
    }


def _canary_strip(ch, family: str, closest: int = GALLERY_PAIRS) -> str:
    """The most-planted canary of `family`'s first dose run that came back closest, beside the samples
    nearest it in pixels."""
    from mnistmem.experiments.dose import CLOSEST_FILE

    result = ch["dose"]
    run = dose_views.runs(result, family)[0]
    stage = f"reproduction_{run}"
    rows = result.summary(stage)["canaries"]
    kept = result.arrays(stage, CLOSEST_FILE)
    top = max(r["count"] for r in rows)
    k = min((i for i, r in enumerate(rows) if r["count"] == top), key=lambda i: rows[i]["closest_distance"])
    images = kept["images"][k][:closest]
    strip = figures.mosaic(np.concatenate([kept["canaries"][k][None], images]), columns=len(images) + 1)
    return _gallery(
        strip,
        f"a pen-stroke canary planted {top:,} times and the {MODEL_NOUNS[family]} samples closest to it",
        f"Left: a pen-stroke canary planted {top:,} times among {dose_views.training_rows(result, run):,} training "
        "images. "
        f"Then the {len(images)} of {result.summary(stage)['n']:,} {MODEL_NOUNS[family]} samples closest to it in "
        "pixels (the same for every definition).",
    )


def duplication(ch, criterion: str) -> Measurement:
    """How often a planted canary comes back, by how often it was planted (the dose experiment: several
    pen-stroke canaries per count, pooled), for the diffusion model and the GAN."""
    result = ch["dose"]
    m = Measurement("duplication", criterion)
    curves = dose_views.families(result)
    parts, counts = [], []
    for family in DOSE_FAMILIES:
        points = curves[family]["points"]
        counts = [p["count"] for p in points]
        shares = []
        for p in points:
            row = p["by_criterion"][criterion]
            m.numbers[f"{family}_{p['count']}"] = row["reproduced"]
            m.numbers[f"{family}_{p['count']}_share"] = row["share"]
            shares.append(dose_views.share_text(row["share"]))  # two significant digits: 1 in 60,000 is not 0%
        runs = len(curves[family]["runs"])
        parts.append(
            f"{and_list(shares)} of the {MODEL_NOUNS[family]} samples"
            + (f" ({runs} training runs pooled)" if runs > 1 else "")
        )
    per_count = len(result.summary("reproduction_diffusion")["canaries"]) // len(counts)
    digits = dose_views.digits(result)
    m.sentence = (
        f"Pen-stroke canaries that look like no digit were planted among {digits:,} training digits, "
        f"{per_count} at each of the counts {_listed(counts)}. By the {definition_name(criterion)}, a canary "
        "planted that often is reproduced, on average, by " + "; and by ".join(parts) + ". Each sample is judged "
        "against everything the model was trained on, each canary counted once."
    )
    m.gallery = "".join(_canary_strip(ch, f) for f in DOSE_FAMILIES)
    return m


def patterns(ch, criterion: str) -> Measurement:
    """Copying against the number of training images: the onset grid's diffusion models at the end of the grid
    (each judged against its own training digits), the models trained on all 60,000, and for the 100-digit
    model the share of samples whose nearest training image is one of its own and Meehan's C_T."""
    m = Measurement("patterns", criterion)
    main = ch["main"]
    parts = []
    runs = onset_views.grid_runs(ch["onset"], "diffusion")
    onsets = ch["onset"].summary("onset")["families"]["diffusion"]["onsets"]
    learned = {o["n"]: o["learned"] for o in onsets if o["run"] == "a"}
    for run in runs:
        row = run["curve"][-1]["criteria"][criterion]
        m.numbers[f"diffusion_{run['n']}_rate"] = row["rate"]
        m.numbers[f"diffusion_{run['n']}_false_alarm_rate"] = row["baseline_rate"]
        parts.append(
            f"{run['n']:,} digits {pct(row['rate'])} (test digits {pct(row['baseline_rate'])}"
            + ("" if learned.get(run["n"]) else "; its samples never met the quality gate")
            + ")"
        )
    steps = runs[-1]["curve"][-1]["step"] if runs else 0
    full = []
    for family in ("diffusion", "gan"):
        row = _row(main.summary(f"score_{family}")["criteria"], criterion)
        m.numbers[f"{family}_60000_rate"] = row["rate"]
        full.append(
            f"the {MODEL_NOUNS[family].replace('-model', ' model')} {pct(row['rate'])} "
            f"(test digits {pct(row['baseline_rate'])})"
        )
    small = ch["small"].summary(f"score_{SMALL}")
    n = small_n(ch)
    m.numbers["small_own_share"] = small["own_training_share"]
    m.numbers["small_c_t"] = small["against_own_training_set"]["c_t"]
    m.numbers["full_diffusion_c_t"] = main.summary("score_diffusion")["c_t"]
    from mnistmem.book.sentences import c_t_reading, c_t_text

    m.sentence = (
        f"Share of samples that are copies by the {definition_name(criterion)}, for one diffusion recipe trained "
        f"for {steps:,} steps on sets of different sizes, each judged against its own training digits: "
        + "; ".join(parts)
        + f". With the larger recipe of the main models, trained on all 60,000 digits: {and_list(full)}. "
        "Independently of any threshold: "
        f"{pct(small['own_training_share'])} of the {n:,}-digit diffusion model's samples have their nearest of "
        f"all 60,000 training digits among its own {n:,} (chance: {pct(n / len(training_digits()))}), and Meehan's "
        f"test gives C_T = {c_t_text(m.numbers['small_c_t'])} against its own digits: its samples lie "
        f"{c_t_reading(m.numbers['small_c_t'])}. For the diffusion model trained on all 60,000 it gives "
        f"{c_t_text(m.numbers['full_diffusion_c_t'])}: its samples lie {c_t_reading(m.numbers['full_diffusion_c_t'])}."
    )
    m.gallery = census(ch, criterion).gallery
    return m


def erasure(ch, criterion: str) -> Measurement:
    """Unlearning: how many samples reproduce the planted © before forgetting and after each method, and after
    the relearning attack (the `verdicts` stage, which judges every stored sample set by every definition)."""
    from mnistmem.book import unlearning_facts
    from mnistmem.book.sentences import CONFIRMING_CRITERION

    result = ch["unlearning"]
    m = Measurement("erasure", criterion)
    judged = result.summary("verdicts")["judged"]
    before = judged["choose"]["before"]["roles"]["canary"]["by_criterion"][criterion]
    m.numbers.update(before=before["hits"], n=before["n"])
    config = unlearning_facts.setup(result)
    parts = []
    for method in ("retrain", "sisa", "finetune", "neggrad"):
        stage = judged.get(f"{method}_canary", {})
        if "after" not in stage:
            continue
        after = stage["after"]["roles"]["forgotten"]["by_criterion"][criterion]["hits"]
        m.numbers[f"{method}_after"] = after
        # one level of brackets at most ("SISA (retrain one shard) 0, against 51 of its own ensemble before
        # forgetting, and 1 after relearning"): a lawyer reads a list of counts, not nested asides
        text = f"{unlearning_facts.METHOD_NAMES[method]} {after:,}"
        own = judged.get("sisa_train", {}).get("before", {}).get("roles", {}).get("canary")
        if method == "sisa" and own is not None:  # SISA starts from its own ensemble, not the base model
            own_before = own["by_criterion"][criterion]["hits"]
            m.numbers["sisa_before"] = own_before
            text += f", against {own_before:,} of its own ensemble before forgetting"
        if "relearned" in stage:
            by = stage["relearned"]["roles"]["forgotten"]["by_criterion"]
            again = by[criterion]["hits"]
            m.numbers[f"{method}_relearned"] = again
            text += f", and {again:,} after relearning"
            pixel = by.get(CONFIRMING_CRITERION, {}).get("hits")
            if again > 0 and pixel == 0 and criterion != CONFIRMING_CRITERION:
                text += f", none of which the {definition_name(CONFIRMING_CRITERION)} counts, as chapter 8 shows"
        parts.append(text)
    m.sentence = (
        f"A diffusion model was trained on {config.digits:,} digits and a © sign planted "
        f"{config.canary_copies:,} times. By the {definition_name(criterion)}, "
        f"{before['hits']:,} of {before['n']:,} samples reproduce the sign before any forgetting. Of "
        f"{before['n']:,} samples drawn after each method, the number that reproduce it: "
        + "; ".join(parts)
        + f". Relearning means {config.relearn_steps:,} further training steps on data without the sign plus a "
        "handful of digits that look most like it."
    )
    m.gallery = _erasure_strip(result)
    return m


def _erasure_strip(result) -> str:
    """The © beside the closest sample before forgetting and after each method (pixel distance)."""
    from mnistmem.book import unlearning_facts

    before = unlearning_facts.before_forgetting(result)["canary"]
    item = unlearning_facts.item_image(result, before["item"])
    tiles = [item, stage_samples(result, "choose")[0][before["closest_sample"]]]
    words = ["the sign", "before"]
    for row in unlearning_facts.method_rows(result):
        if row["target"] != "canary" or row["stage"] != f"{row['method']}_canary":
            continue
        images, _ = result.samples(row["stage"], row["file"])
        tiles.append(images[row["forgotten"]["closest_sample"]])
        words.append(unlearning_facts.METHOD_NAMES[row["method"]])
    return _gallery(
        figures.mosaic(np.stack(tiles), columns=len(tiles)),
        "the planted copyright sign and the closest sample before and after each way of forgetting",
        "Left to right: " + ", ".join(words) + " (the sample closest to the sign in pixels, the same for every "
        "definition).",
    )


MEASUREMENTS: dict[str, Callable[..., Measurement]] = {
    "census": census,
    "fixation": fixation,
    "size": size,
    "duplication": duplication,
    "patterns": patterns,
    "erasure": erasure,
}


def measure(ch, test: LegalTest | str, criterion: str = HEADLINE) -> Measurement:
    """The measurement that answers legal test `test` (a `LegalTest` or its key), under `criterion`."""
    if isinstance(test, str):
        test = next(t for t in LEGAL_TESTS if t.key == test)
    return MEASUREMENTS[test.measurement](ch, criterion)


# --------------------------------------------------------------------------------------------- the chapter
def glue_numbers(ch) -> None:
    """Glue what the prose quotes: one sentence per legal test under the headline definition, the sizes for the
    size argument, the extraction search, and the scale note."""
    from mnistmem.book import extraction as extraction_views
    from mnistmem.book.sentences import model_quality_sentence

    done: dict[str, Measurement] = {}
    for test in LEGAL_TESTS:
        if test.measurement not in done:
            done[test.measurement] = MEASUREMENTS[test.measurement](ch, HEADLINE)
        glue(f"law_{test.key}", done[test.measurement].sentence)
    numbers = done["size"].numbers
    glue("law_weights", _mb(numbers["full_diffusion_weights_bytes"]))
    glue("law_data", _mb(numbers["full_training_bytes"]))
    glue("law_ratio", f"{numbers['full_training_bytes'] / numbers['full_diffusion_weights_bytes']:,.0f}")
    census_numbers_ = done["census"].numbers
    glue("law_small_distinct", f"{census_numbers_['small_distinct_reproduced']:,}")
    glue("law_small_false_alarm", pct(census_numbers_["small_false_alarm_rate"]))
    glue("law_small_count", f"{census_numbers_['small_count']:,} of {census_numbers_['small_n']:,}")
    small_bytes = training_bytes(*small_source(ch))[1]
    glue("law_small_data", _size_text(small_bytes))
    glue("law_headline", definition_name(HEADLINE))
    glue("law_small_n", f"{small_n(ch):,}")
    glue("law_full_verdict", full_verdict(ch))
    glue("law_duplication_verdict", duplication_verdict(ch))
    glue("law_extraction", extraction_views.law_extraction_sentence(ch["extraction"]))
    glue("law_quality", model_quality_sentence(*main_model_quality(ch["main"])))
    scales = sorted({ch[e].scale for e in EXPERIMENTS})
    glue(
        "law_scale_note",
        f"{scale_note(ch['main'])}"
        + ("" if scales == [ch["main"].scale] else f" (experiments at scales {', '.join(scales)})"),
    )


def explorer_state(ch) -> dict:
    """Everything the static control needs: the legal tests, the definitions, and per (measurement, definition)
    the sentence and gallery. JSON-ready."""
    views = {}
    for test in LEGAL_TESTS:
        for criterion in DEFINITIONS:
            key = f"{test.measurement}|{criterion}"
            if key not in views:
                m = MEASUREMENTS[test.measurement](ch, criterion)
                views[key] = {"text": m.sentence, "gallery": m.gallery}
    return {
        "tests": [
            {"key": t.key, "label": t.label, "source": t.source, "question": t.question, "measurement": t.measurement}
            for t in LEGAL_TESTS
        ],
        "definitions": [{"key": c, "label": definition_name(c)} for c in DEFINITIONS],
        "views": views,
    }


EXPLORER_SCRIPT = """
(function () {
  var root = document.getElementById("mnistmem-law-explorer");
  var state = JSON.parse(document.getElementById("mnistmem-law-data").textContent);
  var test = root.querySelector("select[name=test]"), definition = root.querySelector("select[name=definition]");
  function draw() {
    var t = state.tests[test.selectedIndex];
    var view = state.views[t.measurement + "|" + definition.value];
    root.querySelector(".law-source").textContent = t.source;
    root.querySelector(".law-question").textContent = t.question;
    root.querySelector(".law-answer").textContent = view.text;
    root.querySelector(".law-gallery").innerHTML = view.gallery;
  }
  test.addEventListener("change", draw);
  definition.addEventListener("change", draw);
  draw();
})();
"""


def explorer_html(state: dict, caption: str) -> str:
    """The control as one HTML fragment: two drop-down lists, the question, the answer, the gallery."""
    data = json.dumps(state, ensure_ascii=False).replace("</", "<\\/")
    tests = "".join(
        f"<option value='{html.escape(t['key'])}'>{html.escape(t['label'])}</option>" for t in state["tests"]
    )
    definitions = "".join(
        f"<option value='{html.escape(d['key'])}'>{html.escape(d['label'])}</option>" for d in state["definitions"]
    )
    first = state["views"][f"{state['tests'][0]['measurement']}|{state['definitions'][0]['key']}"]
    return (
        "<figure class='mnistmem-figure' id='mnistmem-law-explorer'>"
        "<div class='law-controls' style='display:flex;flex-wrap:wrap;gap:0.5em 1.5em;margin-bottom:0.5em'>"
        f"<label style='flex:2 1 18em;min-width:0'>Legal test<br><select name='test' style='width:100%'>{tests}"
        "</select></label>"
        f"<label style='flex:1 1 12em;min-width:0'>Definition of a copy<br><select name='definition' "
        f"style='width:100%'>{definitions}</select></label>"
        "</div>"
        f"<p><b>Source:</b> <span class='law-source'>{html.escape(state['tests'][0]['source'])}</span></p>"
        "<p><b>The factual question:</b> "
        f"<span class='law-question'>{html.escape(state['tests'][0]['question'])}</span></p>"
        f"<p><b>What MNIST shows:</b> <span class='law-answer'>{html.escape(first['text'])}</span></p>"
        f"<div class='law-gallery'>{first['gallery']}</div>"
        f"<figcaption class='mnistmem-caption'>{html.escape(caption)}</figcaption>"
        f"<script type='application/json' id='mnistmem-law-data'>{data}</script>"
        f"<script>{EXPLORER_SCRIPT}</script></figure>"
    )


def explorer(ch) -> None:
    """Show the control: choose a legal test and a definition of a copy; see the measurement and its images."""
    show_html(
        explorer_html(
            explorer_state(ch),
            "Choose a legal test and a definition of a copy: the page shows the measurement that answers the test's "
            f"factual question and the images behind it ({scale_note(ch['main'])}). Works without a kernel.",
        )
    )


def reconstructed(ch) -> list[dict]:
    """Per definition: how many specific training images the 100-digit diffusion model's samples reproduce
    (judged against its own training set), how many samples do, the definition's false-alarm rate on test
    digits judged against the same set, and the share of the duplication experiment's diffusion samples that
    reproduce a canary of the largest count (pooled over its canaries and runs). The size argument's
    counter-measurement, one row per definition."""
    _, _, table, _, _ = small_model(ch)
    summary = ch["small"].summary(f"score_{SMALL}")["against_own_training_set"]
    top = dose_views.largest_count(ch["dose"], "diffusion")
    rows = []
    for criterion in DEFINITIONS:
        own = _row(summary["criteria"], criterion)
        flagged = np.flatnonzero(table.flags[criterion])
        rows.append(
            {
                "criterion": criterion,
                "samples": own["count"],
                "n": own["n"],
                "distinct": len(np.unique(nearest_under(table, criterion)[flagged])),
                "false_alarm_rate": own["baseline_rate"],
                "false_alarm_ci_high": own["baseline_ci_high"],
                "beyond_false_alarms": own["excess_ci_low"] > 0,
                "canary_share": top["by_criterion"][criterion]["share"],
            }
        )
    return rows


def reconstructed_sentence(rows: list[dict], n_train: int) -> str:
    """The `reconstructed` rows of the definitions that call no test digit a copy (the strict ones), in one
    sentence: samples that are copies, and of how many different training digits."""
    strict = [r for r in rows if r["false_alarm_rate"] == 0 and r["samples"]]
    if not strict:
        return "No definition that calls no test digit a copy flags any sample of this model."
    parts = [
        f"{r['samples']:,} by the {definition_name(r['criterion'])} ({r['distinct']:,} different training digits)"
        for r in strict
    ]
    listed = and_list(parts)
    bound = max(r["false_alarm_ci_high"] for r in strict)
    which = "This definition calls no" if len(strict) == 1 else f"None of these {len(strict)} definitions calls a"
    return (
        f"Of the {strict[0]['n']:,} samples of the diffusion model trained on {n_train:,} digits, the copies of its "
        f"own training digits number {listed}. {which} single test digit a copy of those {n_train:,} (at most "
        f"{pct(bound)} at 95% confidence)."
    )


def extraction_table(ch) -> None:
    """The GDPR section's table: chapter 7's three attacks side by side for the models the law chapter names."""
    from mnistmem.book import extraction as extraction_views

    extraction_views.law_extraction_table(ch)


def reconstruction_table(ch) -> None:
    """`reconstructed` as a table, and glue one sentence on the definitions that never call test digits copies."""
    from mnistmem.book.common import html_table

    rows = reconstructed(ch)
    n_train = small_n(ch)
    top = dose_views.largest_count(ch["dose"], "diffusion")
    planted, runs = top["count"], len(dose_views.runs(ch["dose"], "diffusion"))
    dose_images = training_bytes(ch["dose"], "train_diffusion")[0]
    show_html(
        html_table(
            [
                "definition",
                "copies",
                "digits copied",
                "false alarms",
                f"canary ×{planted:,} copied",
            ],
            [
                [
                    definition_name(r["criterion"]),
                    f"{r['samples']:,} of {r['n']:,}",
                    f"{r['distinct']:,}",
                    pct(r["false_alarm_rate"]),
                    pct(r["canary_share"]),
                ]
                for r in rows
            ],
            f"What can be reconstructed from a diffusion model of {_mb(weights_bytes(*small_source(ch)))} "
            f"trained on {n_train:,} digits, by each definition: its samples that are copies of its own training "
            f"digits; how many different training digits they copy; the share of test digits the definition calls "
            f"copies of those {n_train:,} (its false alarms); and, for "
            + _same_architecture(weights_bytes(*small_source(ch)), weights_bytes(ch["dose"], "train_diffusion"))
            + f" trained on {dose_images:,} images, the share of its samples that copy a pen-stroke canary planted "
            f"{planted:,} times among them (averaged over those canaries and {runs} training run"
            f"{'s' if runs > 1 else ''}) ({scale_note(ch['small'])}; {scale_note(ch['dose'])}).",
        )
    )
    glue("law_reconstructed", reconstructed_sentence(rows, n_train))
