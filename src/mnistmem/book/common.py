"""Names and helpers every chapter's views share: the models' and definitions' names, the scale note,
table and percentage formatting, and reading a stage's samples and copy table through `mnistmem.results`.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

import html
from functools import lru_cache

import numpy as np

from mnistmem import data
from mnistmem.copies import HEADLINE

MODEL_NAMES = {"gan": "GAN", "vae": "VAE", "diffusion": "Diffusion"}
#: The same names inside a sentence ("47 of 5,000 diffusion-model samples").
MODEL_NOUNS = {"gan": "GAN", "vae": "VAE", "diffusion": "diffusion-model"}
#: ... and as the subject of a sentence ("the diffusion model reproduced ...").
MODEL_SUBJECTS = {"gan": "GAN", "vae": "VAE", "diffusion": "diffusion model"}
CRITERION_NAMES = {
    "l2": "pixel distance",
    "nn_ratio": "nearest-neighbour ratio",
    "calibrated_l2": "calibrated distance (Carlini)",
    "ssim": "structural similarity (SSIM)",
    "feature_cosine": "classifier-feature similarity",
    "copy_descriptor": "copy descriptor",
}
#: The headline definition, as prose ("... are copies by the calibrated distance (Carlini)").
HEADLINE_WORDS = CRITERION_NAMES[HEADLINE]
SLIDER_STOPS = 15


def model_name(tag: str) -> str:
    """'diffusion_100' -> 'Diffusion, 100 digits'."""
    family, _, n = tag.partition("_")
    return MODEL_NAMES.get(family, family) + (f", {int(n):,} digits" if n else "")


#: How the book names the CPU kinds of `devices.cpu_summary` (the project machines come with one of these).
CPU_KIND_WORDS = {
    "amd-epyc-avx2": "AMD EPYC with AVX2",
    "amd-epyc-avx512": "AMD EPYC with AVX-512",
    "intel-xeon-amx": "Intel Xeon with AMX",
    "intel-xeon-avx512": "Intel Xeon with AVX-512",
}


def device_text(result) -> str:
    """The device a result was computed on, as its manifest records it; when its stages ran on more than one kind
    of CPU (long experiments are computed in sittings on whichever machine a session gets), every kind is named,
    since floating-point results differ in their last bits between them."""
    hardware = result.manifest.get("hardware", {})
    device = hardware.get("device", "unknown hardware")
    device = device.replace(" 1 threads)", " 1 thread)")  # manifests written before the grammar fix
    kind = (hardware.get("cpu") or {}).get("kind")
    threads = hardware.get("threads")
    if hardware.get("device_type") == "cpu" and kind in CPU_KIND_WORDS and threads:
        device = f"{CPU_KIND_WORDS[kind]} ({threads} thread{'s' if threads != 1 else ''})"
    kinds = {
        ((record.get("hardware") or {}).get("cpu") or {}).get("kind")
        for record in result.manifest.get("stages", {}).values()
        if isinstance(record, dict) and (record.get("hardware") or {}).get("device_type", "cpu") == "cpu"
    } - {None}
    if len(kinds) <= 1:
        return device
    names = sorted(CPU_KIND_WORDS.get(kind, kind) for kind in kinds)
    return f"{len(names)} kinds of CPU, its stages computed in sittings on " + and_list(names)


def scale_note(result) -> str:
    """A short statement of the scale and hardware a result was computed at."""
    hardware = device_text(result)
    words = {
        "smoke": "smoke scale: tiny models trained for seconds, for testing only; the numbers mean nothing",
        "cpu": "cpu scale: small models trained on 2 CPU cores",
        "gpu": "gpu scale: the paper scale, on one GPU",
    }
    return f"{words.get(result.scale, result.scale)}; computed on {hardware}"


@lru_cache(maxsize=1)
def training_digits() -> np.ndarray:
    return data.load_mnist("train")[0]


def stage_table(result, stage: str):
    return result.table(stage)


def stage_samples(result, stage: str) -> tuple[np.ndarray, np.ndarray]:
    return result.samples(stage)


#: Tables with at least this many columns become one card per row on a phone (each value beside its heading):
#: four squeezed columns already break "Diffusion" and "2,300,000,000" across lines at 390 px.
STACK_COLUMNS = 3


def html_table(columns: list[str], rows: list[list], caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{html.escape(columns[i] if i < len(columns) else "")}">{html.escape(str(v))}</td>'
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    stack = " mnistmem-stack" if len(columns) >= STACK_COLUMNS else ""
    return (
        f'<table class="table mnistmem-table{stack}"><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def pct(rate: float, low: float | None = None, high: float | None = None) -> str:
    text = f"{100 * rate:.2f}%"
    if low is not None and high is not None:
        text += f" ({100 * low:.2f} to {100 * high:.2f})"
    return text


def round_stop(value: float, direction: str, significant: int = 2) -> float:
    """A slider stop at a round value: two significant digits of a distance (2.98 -> 3, 0.0123 -> 0.012), and
    of a similarity's distance below 1 (0.99974 -> 0.9997), so stops near 1 stay apart."""
    value = float(value)
    from_one = direction == "above" and value < 1
    gap = 1 - value if from_one else value
    if gap == 0 or not np.isfinite(gap):
        return value
    rounded = float(f"{gap:.{significant}g}")
    return 1 - rounded if from_one else rounded


def slider_stops(values: np.ndarray, default: float, direction: str) -> np.ndarray:
    """About SLIDER_STOPS stops spread over the scores (by quantile), each at a round value, plus the default."""
    quantiles = np.quantile(values, np.linspace(0, 1, SLIDER_STOPS))
    return np.unique(np.append([round_stop(q, direction) for q in quantiles], default))


def and_list(items: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c" (one item as it is)."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def model_stage_config(result, sample_stage: str) -> dict:
    """The config of the stage whose model a sample stage drew from (a training stage, or a `model_*` stage that
    exported a trained model): its `train` config and, for `main`'s models, their `quality_targets`."""
    return result.stage(result.stage(sample_stage)["config"]["from"])["config"]


def main_model_quality(main) -> tuple[dict[str, dict], dict]:
    """({family: its score summary's `confident_share` and `fid`, with the quality `targets` its model stage
    records}, the real-digit reference summary) of the `main` experiment's models: what
    `sentences.model_quality_sentence` reads."""
    models = {}
    for family in MODEL_NAMES:
        summary = main.summary(f"score_{family}")
        targets = model_stage_config(main, f"sample_{family}").get("quality_targets")
        models[family] = {"confident_share": summary["confident_share"], "fid": summary["fid"], "targets": targets}
    return models, main.summary("reference")
