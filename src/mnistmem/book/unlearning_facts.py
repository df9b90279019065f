"""The facts of chapter 8 (unlearning), apart from how they are drawn: the methods' and items' names, one row of
measurements per (item, method), each judged by the book's one definition of a copy, and the image of an item.

`mnistmem.book.unlearning` (figures, tables, sentences) and the live control (`mnistmem.book.unlearning_widget`) both
read these; neither imports the other's module for them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

METHOD_NAMES = {
    "retrain": "retrain from scratch",
    "sisa": "SISA (retrain one shard)",
    "finetune": "fine-tune on the rest",
    "neggrad": "NegGrad",
    "diff_other_seed": "add the diff to another model",
    "diff_finetune": "add the diff to the fine-tuned model",
}
TARGET_NAMES = {"canary": "the canary", "digit": "the copied digit"}
EXPERIMENT = "unlearning"


def items(result) -> dict:
    return result.summary("choose")["items"]


class Setup(NamedTuple):
    """What the base model of the experiment was trained on and how it was judged (from its stage config)."""

    digits: int
    canary_glyphs: list[str]
    canary_copies: int
    steps: int
    samples: int
    relearn_steps: int
    relearn_nearby: int  # look-alike digits the relearning attack adds (0 in results made before it did)
    batch_size: int


def setup(result) -> Setup:
    """The experiment's set-up, read once from the `choose` stage's config (its "train" is the base model's
    `TrainConfig`), so the chapters never index stage configs themselves."""
    config = result.stage("choose")["config"]
    train = config["train"]
    canaries = train["data"]["canaries"]
    return Setup(
        digits=train["data"]["n"] or 60_000,
        canary_glyphs=[c["glyph"] for c in canaries],
        canary_copies=canaries[0]["count"] if canaries else 0,
        steps=train["steps"],
        samples=config["n_samples"],
        relearn_steps=config["relearn_steps"],
        relearn_nearby=config.get("relearn_nearby", 0),
        batch_size=train["batch_size"],
    )


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def share_with_interval(entry: dict | None) -> str:
    """ "4.2% (3.4–5.2%)": an item's share of samples with its 95% Wilson interval, from its hits and n."""
    from mnistmem.stats import wilson_interval

    if entry is None:
        return "–"
    low, high = wilson_interval(entry["hits"], entry["n"])
    return f"{_pct(entry['share'])} ({100 * low:.1f}–{100 * high:.1f}%)"


def base_shares(result) -> dict:
    """{"base": ..., "sisa": ...}: how often the base model and the SISA ensemble reproduce each item before any
    forgetting, with interval and whether it clears the experiment's gate (the stages' `base_share`)."""
    stages = result.manifest.get("stages", {})
    return {
        name: result.summary(stage).get("base_share", {})
        for name, stage in (("base", "choose"), ("sisa", "sisa_train"))
        if stage in stages
    }


def judged(result, stage: str, label: str, measured: dict) -> dict:
    """`measured` (a stage's own reproduction record per role) with each role's hits and share replaced by the
    book's one definition of a copy, from the `verdicts` stage (when the results have it)."""
    if "verdicts" not in getattr(result, "manifest", {}).get("stages", {}):
        return measured
    roles = result.summary("verdicts")["judged"].get(stage, {}).get(label, {}).get("roles", {})
    out = dict(measured)
    for role, verdict in roles.items():
        if isinstance(out.get(role), dict):
            out[role] = {
                **out[role],
                "hits": verdict["hits"],
                "n": verdict["n"],
                "share": verdict["share"],
                "by_criterion": verdict.get("by_criterion", {}),
                "samples": verdict.get("samples", []),  # the first samples counted (their images are stored)
            }
    return out


def before_forgetting(result, method: str | None = None) -> dict:
    """The measurements before any forgetting of the model a method starts from, judged by the book's definition
    of a copy: the base model's, or for SISA its own ensemble's (trained shard by shard on the same data), so
    that each method is compared with what it began with."""
    stage = "sisa_train" if method == "sisa" else "choose"
    return judged(result, stage, "before", result.summary(stage)["before"])


def method_rows(result) -> list[dict]:
    """One row per (target, method) that ran: its cost, what remains of the item, control, quality, relearning."""
    rows = []
    for target in ("canary", "digit"):
        retrain = result.summary(f"retrain_{target}")
        if "skipped" in retrain:
            continue
        base_images = retrain["cost"]["images"]
        base_seconds = retrain["cost"]["seconds"]
        for method in ("retrain", "sisa", "finetune", "neggrad"):
            stage = f"{method}_{target}"
            summary = dict(result.summary(stage))
            summary["after"] = judged(result, stage, "after", summary["after"])
            if summary.get("relearned"):
                summary["relearned"] = judged(result, stage, "relearned", summary["relearned"])
            row = _row(target, method, stage, "samples.npz", summary["after"], summary["cost"], summary)
            own_base = before_forgetting(result, method)
            row["before"], row["base_fid"] = own_base.get(target), own_base.get("fid")
            row["base_recognised"] = own_base.get("recognised")
            rows.append(row)
        diff = result.summary(f"diff_{target}")
        for key, applied in diff["applied"].items():
            method = f"diff_{applied['host']}"
            cost = {"steps": 0, "images": 0, "seconds": 0.0}  # adding weights is free; computing the diff is not
            cost.update(images=base_images, seconds=base_seconds, steps=retrain["cost"]["steps"])
            applied = judged(result, f"diff_{target}", f"applied:{key}", applied)
            rows.append(_row(target, method, f"diff_{target}", f"samples_{key}.npz", applied, cost, None))
        for row in rows:
            if row["target"] == target:
                row["relative_cost"] = row["cost"]["images"] / max(base_images, 1)
                row["relative_seconds"] = row["cost"]["seconds"] / max(base_seconds, 1e-9)
    return rows


def _row(target: str, method: str, stage: str, file: str, after: dict, cost: dict, summary: dict | None) -> dict:
    relearned = (summary or {}).get("relearned")
    return {
        "target": target,
        "method": method,
        "stage": stage,
        "file": file,
        "cost": cost,
        "forgotten": after["forgotten"],
        "control": after.get("control"),
        "fid": after.get("fid"),
        "confidence": after.get("confidence"),
        "recognised": after.get("recognised"),
        "copy_share": after.get("copy_share"),
        "relearned": None if relearned is None else relearned["forgotten"],
    }


def item_image(result, item: dict) -> np.ndarray:
    """The image of an item to forget: a training digit, or a canary glyph as the base model's data rendered it."""
    from mnistmem import data
    from mnistmem.canaries import render_canaries

    if item["source"] >= 0:
        return data.load_mnist("train")[0][item["source"]]
    return render_canaries(setup(result).canary_glyphs)[-item["source"] - 1]


#: An item whose loss is lower than that of all but this share of the unseen test digits stands out as trained on.
STANDS_OUT = 0.05
#: An item whose loss after forgetting exceeds the retrained model's by this factor stands out the other way: as
#: the item the model was pushed away from.
PUSHED_AWAY = 10.0


def _better_fit(rank: float, unseen: int) -> str:
    """Where the model puts the item among the `unseen` test digits by its loss, in words (`rank`: the share of
    them it fits better than the item)."""
    if rank >= 1:
        return f"the model fits all {unseen:,} unseen test digits better than it"
    if rank <= 0:
        return f"the model fits it better than every one of {unseen:,} unseen test digits"
    return f"the model fits {_pct(rank)} of {unseen:,} unseen test digits better than it"


def membership_phrase(entry: dict, retrained: dict, unseen: int) -> str:
    """Where one model puts an item by its own loss (`entry["membership"]`), read against the retrained model's
    (`retrained["membership"]`: the level of a model that never saw the item)."""
    member, reference = entry["membership"], retrained["membership"]
    if member["rank"] <= STANDS_OUT:
        return f"{_better_fit(member['rank'], unseen)}: it still stands out as trained on"
    ratio = member["item_loss"] / max(reference["item_loss"], 1e-12)
    if ratio >= PUSHED_AWAY:
        return (
            f"its loss is {ratio:,.0f} times the retrained model's: it stands out the other way, as the item the "
            "model was pushed away from"
        )
    return f"{_better_fit(member['rank'], unseen)}, about as the retrained model does"


def membership_sentence(result) -> str:
    """The forgotten item's membership signal per method, judged per item as Hayes et al. (SaTML 2025) ask, not on
    average: before forgetting, after, and after the relearning attack, each read against the retrained model,
    which never saw the item. The rank is the share of unseen test digits the model fits better than the item."""
    rows = method_rows(result)
    unseen = result.stage("choose")["config"]["unseen"]
    base = before_forgetting(result)
    parts = []
    for target in ("canary", "digit"):
        mine = {r["method"]: r for r in rows if r["target"] == target}
        if "retrain" not in mine:
            continue
        before = base.get(target) or {}
        retrained = mine["retrain"]["forgotten"]
        text = (
            f"{TARGET_NAMES[target][0].upper()}{TARGET_NAMES[target][1:]}: before forgetting, "
            f"{_better_fit(before['membership']['rank'], unseen)}. Retrained without it, "
            f"{_better_fit(retrained['membership']['rank'], unseen)}: the level of an item never trained on"
        )
        for method in ("sisa", "finetune", "neggrad"):
            row = mine.get(method)
            if row is None:
                continue
            text += f"; after {METHOD_NAMES[method]}, {membership_phrase(row['forgotten'], retrained, unseen)}"
            if row["relearned"] is not None:
                again = row["relearned"]["membership"]["rank"] <= STANDS_OUT
                was = row["forgotten"]["membership"]["rank"] <= STANDS_OUT
                if again and not was:
                    text += ", and after the relearning attack it stands out as trained on again"
                elif again:
                    text += ", and so it stays after the relearning attack"
        parts.append(text + ".")
    return " ".join(parts)
