"""When copying begins: the `onset` experiment read for the book. The share of copies along training for each
training-set size (against steps or against passes over the data, one menu), the onset step against the
size with the fitted line, the samples of the first seeds at every checkpoint, and the two halves sampled from
the same noise.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from mnistmem.book import figures
from mnistmem.book.common import CRITERION_NAMES, MODEL_NAMES, MODEL_NOUNS, MODEL_SUBJECTS, scale_note
from mnistmem.book.display import glue, show, show_html
from mnistmem.book.sentences import onset_sentence, same_noise_sentence, seed_share_sentence
from mnistmem.copies import CRITERIA
from mnistmem.experiments.onset import GALLERY_FILE, ONSET_CRITERION, PAIRS_FILE, SEED_GALLERY_FILE
from mnistmem.onset import gate_share

RATIO_WORDS = CRITERION_NAMES[ONSET_CRITERION]


def grid_runs(result, family: str) -> list[dict]:
    """The grid summaries of one family (first runs only: the second half of a pair is the same size again),
    smallest training set first."""
    runs = [
        result.summary(stage)
        for stage in result.manifest["stages"]
        if stage.startswith(f"grid_{family}_") and result.summary(stage)["run"] == "a"
    ]
    return sorted(runs, key=lambda s: s["n"])


def glue_design(result, family: str = "diffusion") -> None:
    """The grid's design in words, from the results (so no number in the chapter is typed by hand): glues
    `onset_design` (sizes, steps, checkpoints, samples) and `onset_passes` (how often each digit is seen)."""
    runs = grid_runs(result, family)
    first, last = runs[0], runs[-1]
    steps = max(r["step"] for r in first["curve"])
    other_runs = {f: grid_runs(result, f) for f in ("gan", "vae") if f != family}
    others = [
        f"the {MODEL_SUBJECTS[f]} from {found[0]['n']:,} to {found[-1]['n']:,}"
        for f, found in other_runs.items()
        if found
    ]
    glue(
        "onset_design",
        f"from {first['n']:,} to {last['n']:,} digits"
        + (f" (and {' and '.join(others)})" if others else "")
        + f", each for the same {steps:,} training steps of {first['batch_size']} images. The model was kept at "
        f"{len(first['curve'])} moments of its training, and {first['curve'][0]['n_samples']:,} samples were drawn "
        "at each",
    )
    glue(
        "onset_passes",
        f"In {steps:,} steps, a model trained on {first['n']:,} digits sees each of them "
        f"{steps * first['batch_size'] / first['n']:,.0f} times; one trained on {last['n']:,} sees each "
        f"{steps * last['batch_size'] / last['n']:,.0f} times.",
    )


def onset_curves(ch, family: str = "diffusion") -> None:
    """The copy share (ratio test, against the run's own digits, with its 95% interval) at every checkpoint, one
    line per training-set size, against training steps; a menu redraws it against passes over the data, the
    comparison that removes the confound of a small set being seen more often."""
    result = ch["onset"]
    runs = grid_runs(result, family)
    glue_design(result, family)
    fig = go.Figure()
    colours = figures.ramp(figures.model_colour(family), len(runs))
    for colour, run in zip(colours, runs, strict=True):
        rows = run["curve"]
        share = [100 * r["criteria"][ONSET_CRITERION]["rate"] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=[r["step"] for r in rows],
                y=share,
                name=f"{run['n']:,} digits",
                mode="lines+markers",
                line={"color": colour},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        100 * r["criteria"][ONSET_CRITERION]["ci_high"] - s for r, s in zip(rows, share, strict=True)
                    ],
                    "arrayminus": [
                        s - 100 * r["criteria"][ONSET_CRITERION]["ci_low"] for r, s in zip(rows, share, strict=True)
                    ],
                    "thickness": 1,
                },
                customdata=[[r["passes"], 100 * r["recognised_share"]] for r in rows],
                hovertemplate=(
                    "%{y:.2f}% copies after %{x:,} steps (%{customdata[0]:,.0f} passes); the classifier recognises "
                    "%{customdata[1]:.0f}% of the samples<extra>" + f"{run['n']:,} digits" + "</extra>"
                ),
            )
        )
    by_steps = [[r["step"] for r in run["curve"]] for run in runs]
    by_passes = [[r["passes"] for r in run["curve"]] for run in runs]
    figures.log_x_layout(
        fig,
        "training steps",
        f"% of samples that are copies ({RATIO_WORDS})",
        updatemenus=[
            {  # a menu, not a row of buttons: on a phone the second button would run past the chart's edge
                "x": 0,
                "y": 1.15,
                "xanchor": "left",
                "buttons": [
                    {
                        "label": "against training steps",
                        "method": "update",
                        "args": [{"x": by_steps}, {"xaxis.title.text": "training steps"}],
                    },
                    {
                        "label": "against passes over the data",
                        "method": "update",
                        "args": [{"x": by_passes}, {"xaxis.title.text": "passes over the training digits"}],
                    },
                ],
            }
        ],
    )
    show(
        figures.wrap_figure_text(fig),
        f"The share of {MODEL_NOUNS[family]} samples that are copies of one of the model's own training digits "
        f"({RATIO_WORDS}), at every checkpoint of training, one line per training-set size; bars are 95% "
        "confidence intervals. The menu above the chart redraws the same points against passes over the data: a "
        f"model trained on fewer digits sees each of them more often in the same number of steps "
        f"({scale_note(result)}).",
    )


def onset_chart(ch) -> None:
    """The onset step against the training-set size, per family, with the fitted line; runs whose copies never
    rose beyond chance within their budget drawn as triangles at the budget (the onset is later); runs whose
    samples stayed short of the quality gate drawn open (their best share in the hover), with a dotted line over
    every run with an onset beside the dashed line over those that met the gate. Glues `onset_sentence`."""
    result = ch["onset"]
    summary = result.summary("onset")
    fig = go.Figure()
    for family, found in summary["families"].items():
        colour = figures.model_colour(family)
        onsets = [o for o in found["onsets"] if o.get("run", "a") == "a"]
        groups = {
            "copying began": (lambda o: o["learned"] and o["step"] is not None, "circle", "step"),
            "began, below the gate": (
                lambda o: not o["learned"] and o["step"] is not None,
                "circle-open",
                "step",
            ),
            "none within the budget": (lambda o: o["learned"] and o["step"] is None, "triangle-up", "budget"),
            "none within the budget, below the gate": (
                lambda o: not o["learned"] and o["step"] is None,
                "triangle-up-open",
                "budget",
            ),
        }
        for label, (keep, symbol, key) in groups.items():
            points = [o for o in onsets if keep(o)]
            if not points:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[o["n"] for o in points],
                    y=[o[key] for o in points],
                    customdata=[100 * o.get("best_quality", 0.0) for o in points],
                    mode="markers",
                    name=f"{MODEL_NAMES[family]}: {label}",
                    marker={"color": colour, "symbol": symbol, "size": 11, "line": {"color": colour, "width": 2}},
                    hovertemplate="%{x:,} digits: %{y:,} steps; at best %{customdata:.0f}% recognised<extra>"
                    + f"{MODEL_NAMES[family]}, {label}</extra>",
                )
            )
        lines = (
            ("line", "dash", "line through the runs that met the gate"),
            ("line_all", "dot", "line through all runs"),
        )
        for key, dash, label in lines:
            line = found.get(key)
            if not line or (
                key == "line_all" and found.get("line") and set(line["sizes"]) == set(found["line"]["sizes"])
            ):
                continue
            xs = np.array([min(line["sizes"]), max(line["sizes"])], dtype=float)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=line["slope"] * xs + line["intercept"],
                    mode="lines",
                    name=f"{MODEL_NAMES[family]}: {label}",
                    line={"color": colour, "dash": dash},
                    hoverinfo="skip",
                )
            )
    figures.log_x_layout(fig, "training digits (n)", "training steps until copying began", 520, log_y=True)
    fig.update_layout(legend={"orientation": "h", "y": -0.42})  # many entries: keep them clear of the axis title
    show(
        figures.wrap_figure_text(fig),
        "When copying began, against the number of training digits: the first checkpoint at which the share of "
        f"copies ({RATIO_WORDS}) is, at 95% confidence, above what independent test digits give under the same "
        "judging. Triangles: no such checkpoint within the training budget (shown at the budget: copying begins "
        "later, if at all). Open symbols: runs whose samples stayed short of the quality gate (hover for the best "
        f"share they reached); the dotted line counts them, the dashed line does not ({scale_note(result)}).",
    )
    glue("onset_sentence", onset_sentence(summary["families"]))


def _pick(sizes: list[int], which: str) -> int:
    """The "smallest" or "largest" of the training-set sizes measured (the chapter names no number, so it reads
    the same at every scale)."""
    return {"smallest": min, "largest": max}[which](sizes)


def seeds_over_training(ch, family: str, which: str) -> None:
    """The same first seeds drawn from every grid checkpoint of one run (the family's `which` = "smallest" or
    "largest" training set), one row per checkpoint, beside the final model's most copy-like samples and the
    training digits they copy. Glues `seeds_<family>_<which>_n` (its size)."""
    result = ch["onset"]
    n = _pick([run["n"] for run in grid_runs(result, family)], which)
    glue(f"seeds_{family}_{which}_n", f"{n:,}")
    stage = f"grid_{family}_{n}"
    gallery = result.arrays(stage, GALLERY_FILE)
    steps = gallery["steps"]
    rows = gallery["first_seeds"]
    images = rows.reshape(-1, 28, 28)
    hover = [f"after {int(step):,} steps: seed {k}" for step in steps for k in range(rows.shape[1])]
    show(
        figures.digit_grid(images, hover, columns=rows.shape[1], scale=3),
        f"The {MODEL_SUBJECTS[family]} trained on {n:,} digits: the same {rows.shape[1]} random seeds drawn after "
        + ", ".join(f"{int(s):,}" for s in steps)
        + f" training steps (top to bottom). Hover a digit for its step ({scale_note(result)}).",
    )
    pairs = [
        figures.Pair(
            gallery["closest"][i],
            gallery["partners"][i],
            f"seed {int(gallery['closest_seeds'][i])} · training digit #{int(gallery['partner_sources'][i])}",
            [
                (
                    RATIO_WORDS,
                    f"{figures.threshold_text(float(gallery['closest_scores'][i]))}; a copy if "
                    f"{CRITERIA[ONSET_CRITERION].direction} "
                    f"{figures.threshold_text(CRITERIA[ONSET_CRITERION].default_threshold)}",
                    bool(CRITERIA[ONSET_CRITERION].flag(gallery["closest_scores"][i : i + 1])[0]),
                )
            ],
        )
        for i in range(len(gallery["closest"]))
    ]
    show_html(
        "<figure class='mnistmem-figure mnistmem-pairs'>"
        + figures.pair_gallery_html(pairs)
        + "<figcaption class='mnistmem-caption'>"
        + html.escape(
            f"The final model's {len(pairs)} samples that the {RATIO_WORDS} finds most copy-like (smallest ratio of "
            "the nearest to the second-nearest training digit), each beside its nearest training digit and their "
            f"difference ({scale_note(result)})."
        )
        + "</figcaption></figure>"
    )


def same_noise(ch, which: str) -> None:
    """Two models trained on disjoint halves, sampled from the same noise, at the `which` = "smallest" or
    "largest" half size measured: the pairs side by side, each with the training digit of its own half that it is
    nearest to. Glues `same_noise_<which>` (the sentence) and `same_noise_<which>_n` (the half size)."""
    result = ch["onset"]
    n = _pick(
        [int(name.rsplit("_", 1)[1]) for name in result.manifest["stages"] if name.startswith("same_noise_")], which
    )
    stage = f"same_noise_{n}"
    summary = result.summary(stage)
    pairs = result.arrays(stage, PAIRS_FILE)
    rows = np.concatenate([pairs["nearest_a"], pairs["a"], pairs["b"], pairs["nearest_b"]])
    count = len(pairs["a"])
    labels = ["nearest training digit of half A", "model A", "model B", "nearest training digit of half B"]
    hover = [
        f"{labels[row]} · seed {k}" + (f" · A and B {pairs['between'][k]:.2f} apart" if row in (1, 2) else "")
        for row in range(4)
        for k in range(count)
    ]
    show(
        figures.digit_grid(rows, hover, columns=count, scale=3),
        f"Two diffusion models, each trained on its own {summary['half_size']:,} digits (no digit in common), "
        "sampled from the same random noise: row 2 is model A, row 3 model B, each column one seed; rows 1 and 4 "
        f"are the training digits of each model's own half nearest to its sample ({scale_note(result)}).",
    )
    glue(f"same_noise_{which}_n", f"{n:,}")
    glue(f"same_noise_{which}", same_noise_sentence(summary))


def seed_share_stage(result) -> str:
    """The name of the onset experiment's `seed_share_<n>` stage."""
    return next(name for name in result.manifest["stages"] if name.startswith("seed_share_"))


def seed_share(ch) -> None:
    """For the copying model trained on the fewest digits: the share of all seeds that reproduces each of its
    training digits (most first, 95% intervals) against the even share, then the most reproduced digits beside
    samples of different seeds that reproduce them. Glues `seed_share_n` (samples), `seed_share_digits` (the
    training-set size) and `seed_share_sentence`."""
    result = ch["onset"]
    stage = seed_share_stage(result)
    summary = result.summary(stage)
    rows = summary["digits"]
    colour = figures.model_colour("diffusion")
    fig = go.Figure(
        go.Bar(
            x=list(range(1, len(rows) + 1)),
            y=[100 * r["share"] for r in rows],
            marker_color=colour,
            error_y=figures.percent_interval(rows),
            text=[f"training digit #{r['source']}: {r['seeds']:,} of {summary['n']:,} seeds" for r in rows],
            hovertemplate="%{text} (%{y:.2f}%)<extra></extra>",
            name="share of all seeds",
        )
    )
    fig.add_hline(
        y=100 * summary["even_share"],
        line={"dash": "dash", "color": figures.PALETTE[0]},
        annotation_text="if spread evenly",
        annotation_position="top right",
    )
    fig.update_layout(
        xaxis={"title": "its training digits, most reproduced first"},
        yaxis={"title": "% of all seeds that reproduce it", "rangemode": "tozero"},
        height=380,
        plot_bgcolor="white",
        showlegend=False,
        margin={"l": 60, "r": 10, "t": 20, "b": 50},
    )
    show(
        figures.wrap_figure_text(fig),
        f"The diffusion model trained on {summary['training_digits']:,} digits, {summary['n']:,} samples each from "
        "its own random seed: for each of its training digits, the share of all seeds whose sample is a copy of it "
        "(ratio test, judged against its own digits), with 95% intervals; the dashed line is the share each digit "
        f"would get if the copies were spread evenly over its digits ({scale_note(result)}).",
    )
    kept = result.arrays(stage, SEED_GALLERY_FILE)
    shown = [k for k in range(len(kept["training"])) if kept["seeds"][k, 0] >= 0]
    if shown:
        columns = 1 + kept["samples"].shape[1]
        images, hover = [], []
        for k in shown:
            images.append(kept["training"][k])
            hover.append(f"training digit #{int(kept['sources'][k])}")
            for j in range(columns - 1):
                images.append(kept["samples"][k, j])
                seed = int(kept["seeds"][k, j])
                hover.append(f"seed {seed}: a copy of #{int(kept['sources'][k])}" if seed >= 0 else "(no more)")
        show(
            figures.digit_grid(np.stack(images), hover, columns=columns, scale=2),
            "The training digits that came back most often (left) and samples drawn from different random seeds "
            f"that are copies of them (hover for the seeds; {scale_note(result)}).",
        )
    glue("seed_share_n", f"{summary['n']:,}")
    glue("seed_share_digits", f"{summary['training_digits']:,}")
    glue("seed_share_sentence", seed_share_sentence(summary))


def smallest_runs(result) -> dict[str, dict]:
    """Per family, the grid's run on the fewest digits (its first run) at its last checkpoint: what the book's
    summary tables quote as "trained on n digits", by the onset's own definition (the ratio test against the
    model's own digits, as chapter 6 shows it; the copy descriptor also flags some of a failed GAN's blotchy
    samples). Keys: `family`, `n`, `stage`, `steps`, `samples`, `rate`, `low`, `high` (the share of copies with
    its 95% interval), `bar` (the upper end of the test digits' interval under the same judging), `own_share`
    (nearest of all 60,000 among its own n), `recognised` (the classifier's share) and `quality` (the quality
    gate's share, `mnistmem.onset.gate_share`)."""
    smallest: dict[str, dict] = {}
    for family in ("gan", "vae", "diffusion"):
        runs = grid_runs(result, family)
        if not runs:
            continue
        run = runs[0]
        last = max(run["curve"], key=lambda r: r["step"])
        judged = last["criteria"][ONSET_CRITERION]
        smallest[family] = {
            "family": family,
            "n": run["n"],
            "stage": f"grid_{family}_{run['n']}",
            "steps": last["step"],
            "samples": last["n_samples"],
            "rate": judged["rate"],
            "low": judged["ci_low"],
            "high": judged["ci_high"],
            "bar": judged["baseline_ci_high"],
            "own_share": last["own_nearest"]["share"],
            "recognised": last["recognised_share"],
            # the quality gate's share (recognised and handwriting-like), which the gate is judged by
            "quality": gate_share(last["recognised_share"], last["handwriting_share"]),
        }
    return smallest
