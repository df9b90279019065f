"""How duplication drives copying: the `dose` experiment read for the book. The share of samples reproducing a
canary against how often it was planted (pooled over the canaries of each count and the runs, each canary's
own share beside it), and every canary beside the samples that came closest to it.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import CRITERION_NAMES, MODEL_NAMES, MODEL_SUBJECTS, and_list, scale_note
from mnistmem.book.display import glue, show
from mnistmem.book.sentences import dose_sentence
from mnistmem.experiments.dose import CLOSEST_FILE, NEAREST, RUNS

#: Small counts in words, for the prose ("three strokes at each count", "trained twice").
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
TIMES_WORDS = {1: "once", 2: "twice", 3: "three times", 4: "four times"}


def share_text(share: float) -> str:
    """A share of the training images in percent with two significant digits, so that one image in 64,000
    reads 0.0016%, not 0.00%."""
    return f"{100 * share:.2g}%"


#: What the chart offers, the first shown: the ratio test and the pixel distance (both calibrated in chapter 2,
#: and the two the duplicate-aware judging matters for), the headline definition, and, as the loosest reading,
#: the samples that resemble a canary more than any digit (`experiments.dose.NEAREST`), copies or not.
CHART_CRITERIA = ("nn_ratio", "l2", "copy_descriptor", NEAREST)
CHART_LABELS = {**{c: f"copy by {name}" for c, name in CRITERION_NAMES.items()}, NEAREST: "resembles it most"}


def families(result) -> dict[str, dict]:
    """The `dose` stage's curves: {family: {"runs": [...], "points": [pooled point per count, ascending]}}."""
    return result.summary("dose")["families"]


def largest_count(result, family: str) -> dict:
    """The pooled point of `family` at the largest count planted (the strongest dose)."""
    return max(families(result)[family]["points"], key=lambda p: p["count"])


def fewest_copies_reproduced(result, criterion: str = "nn_ratio") -> int | None:
    """The smallest count at which any family reproduces its canaries by `criterion` at 95% confidence (the
    pooled lower bound above zero), or None."""
    counts = [
        p["count"]
        for curve in families(result).values()
        for p in curve["points"]
        if p["by_criterion"][criterion]["ci_low"] > 0
    ]
    return min(counts, default=None)


def runs(result, family: str) -> list[str]:
    """The training runs of `family` ("diffusion", "diffusion_b", ...)."""
    return families(result)[family]["runs"]


def canaries_per_run(result, point: dict, family: str) -> int:
    """How many canaries one training set held at a pooled point's count (the point pools every run's)."""
    return point["canaries"] // len(runs(result, family))


def digits(result) -> int:
    """How many real digits the canaries were planted among (None in the spec: all of MNIST)."""
    from mnistmem.book.common import training_digits

    return result.stage("train_diffusion")["config"]["train"]["data"].get("n") or len(training_digits())


def training_rows(result, run: str = "diffusion") -> int:
    """How many images a run was trained on: the digits plus every planted copy of every canary."""
    return result.summary(f"reproduction_{run}")["training_rows"]


def glue_design(ch) -> None:
    """The experiment's design in words, from the results: glues `dose_canaries` (how many strokes),
    `dose_per_count` (in words), `dose_counts` (the counts, listed), `dose_digits`, `dose_runs` (which models,
    how many runs), `dose_samples`, `dose_share_smallest` / `dose_share_largest` (a canary's share of the training
    images at the smallest and largest count) and `dose_largest` (that count)."""
    result = ch["dose"]
    rows = result.summary("reproduction_diffusion")["canaries"]
    counts = sorted({r["count"] for r in rows})
    per_count = len(rows) // len(counts)
    curves = families(result)
    glue("dose_canaries", f"{len(rows):,}")
    glue("dose_per_count", COUNT_WORDS.get(per_count, f"{per_count:,}"))
    glue("dose_counts", and_list([f"{c:,}" for c in counts]))
    glue("dose_digits", f"{digits(result):,}")
    glue("dose_samples", f"{result.summary('reproduction_diffusion')['n']:,}")
    glue("dose_runs", and_list([f"the {MODEL_SUBJECTS[f]} {TIMES_WORDS[len(c['runs'])]}" for f, c in curves.items()]))
    shares = {r["count"]: r["training_share"] for r in rows}
    glue("dose_share_smallest", share_text(shares[counts[0]]))
    glue("dose_share_largest", share_text(shares[counts[-1]]))
    glue("dose_largest", f"{counts[-1]:,}")


def dose_chart(ch) -> None:
    """Reproduction share against the number of planted copies, one line per family (pooled over canaries and
    runs, 95% intervals), each canary's own share as a dot; a menu switches the definition. Glues `dose_sentence`."""
    result = ch["dose"]
    curves = families(result)
    fig = go.Figure()
    visible = []
    for c, criterion in enumerate(CHART_CRITERIA):
        for family, curve in curves.items():
            points = curve["points"]
            colour = figures.model_colour(family)
            rows = [p["by_criterion"][criterion] for p in points]
            counts = [p["count"] for p in points]
            fig.add_trace(
                go.Scatter(
                    x=counts,
                    y=[100 * r["share"] for r in rows],
                    mode="lines+markers",
                    name=f"{MODEL_NAMES[family]} ({len(curve['runs'])} run{'s' if len(curve['runs']) > 1 else ''})",
                    line={"color": colour},
                    error_y=figures.percent_interval(rows),
                    hovertemplate="planted %{x:,} times: %{y:.2f}% of samples reproduce it<extra>"
                    + MODEL_NAMES[family]
                    + "</extra>",
                    visible=c == 0,
                )
            )
            visible.append(c)
            spread = [(p["count"], q) for p, r in zip(points, rows, strict=True) for q in r["per_canary"]]
            fig.add_trace(
                go.Scatter(
                    x=[count for count, _ in spread],
                    y=[100 * q["share"] for _, q in spread],
                    mode="markers",
                    name=f"{MODEL_NAMES[family]}: each canary",
                    marker={"color": colour, "size": 6, "opacity": 0.5},
                    text=[f"{q['glyph']} ({q['run']})" for _, q in spread],
                    hovertemplate="%{text}: %{y:.2f}%<extra></extra>",
                    visible=c == 0,
                )
            )
            visible.append(c)
    figures.log_x_layout(
        fig,
        "copies of the canary in the training set",
        "% of samples that reproduce it",
        updatemenus=[
            {
                "x": 0,
                "y": 1.15,
                "xanchor": "left",
                "buttons": [
                    {
                        "label": CHART_LABELS[criterion],
                        "method": "update",
                        "args": [{"visible": [v == c for v in visible]}],
                    }
                    for c, criterion in enumerate(CHART_CRITERIA)
                ],
            }
        ],
    )
    show(
        figures.wrap_figure_text(fig),
        "The share of samples that reproduce a canary, against how many copies of it the training set held: lines "
        "pool the canaries planted that often (and, for the diffusion model, both runs), with 95% confidence "
        "intervals; dots are single canaries. The menu changes the definition of a copy; its last entry counts "
        "every sample whose nearest training image is the canary, copy or not. Samples are judged against the "
        f"model's own training set with each canary counted once ({scale_note(result)}).",
    )
    glue("dose_sentence", dose_sentence(curves))


def family_of(run: str) -> str:
    """The model family of a dose run ("diffusion_b" -> "diffusion")."""
    return next(family for name, family, _, _ in RUNS if name == run)


#: A sample this many pixel-distance thresholds from a canary or further does not resemble it (the closest digits
#: to a stroke canary lie 6 to 9 away, measured).
FAR = 3.0


def gallery_note(summary: dict, family: str) -> str:
    """What a run's gallery shows, from its numbers: whether the samples closest to the canaries planted most
    often are the strokes themselves (within the pixel-distance threshold), come near them without being
    copies, or whether no sample comes near any canary, so that the model never drew them."""
    subject = MODEL_SUBJECTS[family]
    threshold = summary["thresholds"]["l2"]
    top = max(r["count"] for r in summary["canaries"])
    closest = min(r["closest_distance"] for r in summary["canaries"] if r["count"] == top)
    if closest <= threshold:
        return (
            f"For the canaries planted {top:,} times, the closest samples of the {subject} are the strokes "
            f"themselves: the nearest lies {closest:.2f} from its canary, within the pixel-distance threshold of "
            f"{threshold:.2f}."
        )
    if closest < FAR * threshold:
        return (
            f"For the canaries planted {top:,} times, the closest samples of the {subject} resemble the strokes, but "
            f"none is a copy: the nearest lies {closest:.2f} from its canary, beyond the pixel-distance threshold of "
            f"{threshold:.2f}."
        )
    nearest = min(r["closest_distance"] for r in summary["canaries"])
    text = (
        f"None of the {summary['n']:,} samples of the {subject} comes near any canary (the closest lies "
        f"{nearest:.2f} away, where the pixel-distance threshold for a copy is {threshold:.2f}): its closest samples "
        "are digits. However often the strokes were planted, this model did not learn to draw them at all."
    )
    if family == "gan":
        text += (
            ' GANs are known to leave out rare kinds of image ("mode dropping"); a model that does so cannot '
            "reproduce them either."
        )
    return text


def canary_gallery(ch, run: str = "diffusion") -> None:
    """Every canary of one run (its count above it) beside the samples that came closest to it; glues
    `dose_gallery_<run>` (`gallery_note`)."""
    result = ch["dose"]
    stage = f"reproduction_{run}"
    kept = result.arrays(stage, CLOSEST_FILE)
    rows = result.summary(stage)["canaries"]
    order = np.argsort([r["count"] for r in rows], kind="stable")
    images, hover = [], []
    for k in order:
        images.append(kept["canaries"][k])
        hover.append(f"{rows[k]['glyph']}, planted {rows[k]['count']:,} times")
        for j in range(kept["images"].shape[1]):
            images.append(kept["images"][k, j])
            hover.append(f"sample seed {int(kept['seeds'][k, j])}: pixel distance {kept['distance'][k, j]:.2f}")
    columns = 1 + kept["images"].shape[1]
    glue(f"dose_gallery_{run}", gallery_note(result.summary(stage), family_of(run)))
    show(
        figures.digit_grid(np.stack(images), hover, columns=columns, scale=2),
        f"Each canary (left column, fewest copies at the top) and the {columns - 1} samples of the "
        f"{MODEL_SUBJECTS[family_of(run)]} that came closest to it by pixel "
        f"distance. Hover for the count and distances ({scale_note(result)}).",
    )
