"""How the models got better: the `training` experiment's curves of quality (recognised share, MNIST-FID, C_T)
and of copies against training time, for every family trained to MNIST quality.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnistmem.book import figures
from mnistmem.book.common import HEADLINE_WORDS, MODEL_NAMES, MODEL_SUBJECTS, and_list, pct, scale_note
from mnistmem.book.display import glue, show
from mnistmem.book.sentences import quality_progress_sentence, solver_steps_sentence

FAMILIES = ("gan", "vae", "diffusion")


def curve_families(result) -> list[str]:
    """The families with a finished quality curve, in the book's order."""
    stages = result.manifest["stages"]
    return [family for family in FAMILIES if f"curve_{family}" in stages]


def quality_curve(ch, families: list[str] | None = None) -> None:
    """Three panels against training epochs: share recognised, MNIST-FID (log scale) and samples flagged by the
    headline definition, one line per family (`families`, default all with a curve), with each family's bars as
    dotted lines; glues one sentence per family (`quality_progress_<family>`)."""
    result = ch["training"]
    families = [f for f in curve_families(result) if families is None or f in families]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=(
            "recognised by the classifier (%)",
            "MNIST-FID (log scale; lower is better)",
            f"flagged by the {HEADLINE_WORDS}",
        ),
    )
    n = None
    for family in families:
        summary = result.summary(f"curve_{family}")
        n = summary["n"]
        rows = summary["curve"]
        epochs = [r["epochs"] for r in rows]
        colour = figures.model_colour(family)
        name = MODEL_NAMES[family]
        hover = [
            f"{name}, step {r['step']:,} ({r['epochs']:.1f} epochs): {pct(r['recognised_share'])} recognised, "
            f"FID {r['fid']:.1f}, {r['copies'][summary['headline']]:,} of {n:,} flagged"
            for r in rows
        ]
        for row, values in (
            (1, [100 * r["recognised_share"] for r in rows]),
            (2, [r["fid"] for r in rows]),
            (3, [r["copies"][summary["headline"]] for r in rows]),
        ):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=values,
                    mode="lines+markers",
                    name=name,
                    legendgroup=family,
                    showlegend=row == 1,
                    line={"color": colour},
                    hovertext=hover,
                    hoverinfo="text",
                ),
                row=row,
                col=1,
            )
        targets = summary["targets"]
        for row, value in ((1, 100 * targets["recognised_share"]), (2, targets["fid"])):
            fig.add_hline(y=value, line={"color": colour, "dash": "dot", "width": 1}, row=row, col=1)
        glue(f"quality_progress_{family}", quality_progress_sentence(family, summary))
    fig.update_yaxes(type="log", row=2, col=1)
    fig.update_yaxes(rangemode="tozero", row=3, col=1)
    fig.update_xaxes(title_text="training epochs (passes over the 60,000 digits)", row=3, col=1)
    fig.update_layout(height=720, plot_bgcolor="white", legend={"orientation": "h", "y": -0.12})
    names = " and ".join(f"the {MODEL_SUBJECTS[f]}" for f in families)
    show(
        figures.wrap_figure_text(fig),
        f"How {names} got better: {n:,} samples from each kept checkpoint, scored like the chapter's samples "
        f"(dotted lines: the bars {'it is' if len(families) == 1 else 'they are'} held to; {scale_note(result)}).",
    )
    glue("quality_curve_n", n)


def recipe_words(train: dict) -> str:
    """The optimisation recipe of a training config (a `TrainConfig` dict), in words, from its fields."""
    parts = []
    kwargs = train.get("model_kwargs", {})
    if kwargs.get("snr_gamma"):
        parts.append("a loss that weighs the noise levels by how much they teach (min-SNR weighting, Hang et al. 2023)")
    if train.get("lr_schedule") == "cosine":
        parts.append("a learning rate that rises over the first steps and then falls along a cosine curve to zero")
    if train.get("grad_clip"):
        parts.append("gradient clipping")
    if train.get("ema"):
        parts.append(
            "samples drawn from a moving average of the network's recent weights rather than from its last weights"
            + (" (Yazıcı et al. 2019)" if train["model"] == "gan" else "")
        )
    if not parts:
        return "a constant learning rate"
    return and_list(parts)


def training_sentence(ch, family: str) -> str:
    """How a main model was trained: passes over the data, steps and batch, logged training hours, recipe."""
    result = ch["training"]
    train = result.stage(f"train_{family}")["config"]["train"]
    rows = result.summary(f"curve_{family}")["curve"]
    last = rows[-1]
    hours = last.get("train_hours")
    time = f", {duration_words(hours)} of training on two processor cores" if hours is not None else ""
    return (
        f"It was trained on all 60,000 training digits for {passes_words(last['epochs'])} ({train['steps']:,} "
        f"steps of {train['batch_size']:,} digits{time}), with {recipe_words(train)}."
    )


def passes_words(epochs: float) -> str:
    """Passes over the training set, in words: "30 passes over them", "one pass", "a small fraction of one pass"."""
    if epochs >= 1.5:
        return f"{epochs:.0f} passes over them"
    if epochs >= 0.95:
        return "one pass over them"
    return f"{epochs:.2g} of one pass over them"


def duration_words(hours: float) -> str:
    """A training time in words: "about 8.5 hours", "about 34 minutes", "under a minute"."""
    if hours >= 1:
        return f"about {hours:.1f} hours"
    if hours * 60 >= 1:
        return f"about {hours * 60:.0f} minutes"
    return "under a minute"


def glue_training(ch, family: str) -> None:
    """`<family>_training`: how the model was trained (`training_sentence`)."""
    glue(f"{family}_training", training_sentence(ch, family))


def glue_solver(ch) -> None:
    """`diffusion_solver`: what more denoising steps did for the diffusion model (`solver_steps_sentence`), from
    the `training` experiment's solver_diffusion stage, beside its curve and the steps `main` samples with."""
    result = ch["training"]
    glue(
        "diffusion_solver",
        solver_steps_sentence(
            result.summary("solver_diffusion")["points"],
            result.summary("curve_diffusion")["curve"],
            curve_steps=result.sampler_steps("curve_diffusion"),
            used_steps=ch["main"].sampler_steps("sample_diffusion"),
        ),
    )
