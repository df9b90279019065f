"""Chapter 1's findings table, chapter 10's conclusions and objections, and the appendix's tables of
scales and manifests: the book's answers gathered from every experiment.

Nothing here computes a result; it only reads `data/results` through `mnistmem.results`.
"""

from __future__ import annotations

from mnistmem.book import dose as dose_views
from mnistmem.book.common import (
    CRITERION_NAMES,
    HEADLINE_WORDS,
    MODEL_NAMES,
    MODEL_SUBJECTS,
    device_text,
    html_table,
    main_model_quality,
    model_name,
    model_stage_config,
    pct,
    scale_note,
)
from mnistmem.book.display import glue, show_html
from mnistmem.book.onset import seed_share_stage, smallest_runs
from mnistmem.book.scale import scored_tags
from mnistmem.book.sentences import (
    bound_pct,
    c_t_summary,
    census_conclusion,
    dose_sentence,
    extraction_sentence,
    model_quality_sentence,
    overall_answer,
    regenerated_copies_sentence,
    unlearning_conclusion,
)
from mnistmem.copies import HEADLINE
from mnistmem.experiments.onset import ONSET_CRITERION
from mnistmem.experiments.training import TARGETS

#: The definition the onset grid (and so every "trained on n digits" row) is read by.
ONSET_WORDS = CRITERION_NAMES[ONSET_CRITERION]


def objections_summary(ch) -> None:
    result = ch["main"]
    rows = []
    for tag in scored_tags(result):
        summary = result.summary(f"score_{tag}")
        for r in summary["criteria"]:
            rows.append(
                [
                    model_name(tag),
                    CRITERION_NAMES.get(r["criterion"], r["criterion"]),
                    pct(r["rate"], r["ci_low"], r["ci_high"]),
                    pct(r["baseline_rate"]),
                    pct(r["excess"], r["excess_ci_low"], r["excess_ci_high"]),
                ]
            )
    show_html(
        html_table(
            ["model", "definition", "copies", "baseline", "excess"],
            rows,
            f"All models trained on 60,000 digits, all definitions ({scale_note(result)}).",
        )
    )


def code_text(manifest: dict) -> str:
    """The code commit(s) behind an experiment, read off its stage records (an experiment computed over several
    sittings can span commits): "4f2500a756", "3 commits, the last 8218a01367", with "uncommitted changes" where
    a sitting ran with changes to src/ not yet committed, and "not recorded" where a sitting could not read git."""
    records = sorted(manifest["stages"].values(), key=lambda r: r.get("finished") or "")
    codes = [r.get("code") or {} for r in records]
    commits = list(dict.fromkeys(c["commit"] for c in codes if c.get("commit")))
    missing = sum(1 for c in codes if not c.get("commit"))
    if not commits:
        return "not recorded"
    text = commits[0][:10] if len(commits) == 1 else f"{len(commits)} commits, the last {commits[-1][:10]}"
    notes = []
    if any(c.get("dirty") for c in codes):
        notes.append("with uncommitted changes")
    if missing:
        notes.append(f"not recorded for {missing} of {len(codes)} stages")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def scales_used(ch) -> None:
    rows = [
        [
            name,
            result.scale,
            device_text(result),
            f"{result.wall_seconds / 60:.1f} min",
            code_text(result.manifest),
        ]
        for name, result in ch.results.items()
    ]
    show_html(
        html_table(
            ["experiment", "scale", "hardware", "compute time", "code commit"],
            rows,
            "The scale, hardware and compute time behind each experiment shown in this book.",
        )
    )


def manifest_table(ch) -> None:
    rows = []
    for name, result in ch.results.items():
        for stage, record in result.manifest["stages"].items():
            rows.append([name, result.scale, stage, f"{record['wall_seconds']:.1f} s", record["finished"]])
    show_html(
        html_table(
            ["experiment", "scale", "stage", "wall time", "finished"],
            rows,
            "Every stage behind the book, from the manifests in data/results.",
        )
    )
    scales_used(ch)


def findings(ch) -> None:
    """The book's main measurements in one table, each row pointing to the chapter that shows it."""
    main = ch["main"]
    rows = []
    baseline = None
    for family in ("gan", "vae", "diffusion"):
        summary = main.summary(f"score_{family}")
        by = {r["criterion"]: r for r in summary["criteria"]}
        baseline = by[HEADLINE]["baseline_rate"]
        train = model_stage_config(main, f"sample_{family}").get("train", {})
        passes = f" for {train['steps'] * train['batch_size'] / 60_000:.0f} passes" if "steps" in train else ""
        rows.append(
            [
                f"{MODEL_NAMES[family]} trained on all 60,000 digits{passes} "
                f"(chapter {3 + ('gan', 'vae', 'diffusion').index(family)})",
                f"{by[HEADLINE]['count']:,} of {summary['n']:,} samples are copies by the "
                f"{CRITERION_NAMES[HEADLINE]}; "
                f"{by['l2']['count']:,} lie within the pixel-distance threshold (the classifier recognises "
                f"{pct(summary['confident_share'])} of the samples; MNIST-FID {summary['fid']:.1f})",
            ]
        )
    if "census" in ch.results:
        rows += census_findings(ch["census"])
    for _, point in sorted(smallest_runs(ch["onset"]).items()):
        rows.append(
            [
                f"{MODEL_NAMES[point['family']]} trained on {point['n']:,} digits for {point['steps']:,} steps "
                "(chapter 6)",
                f"{pct(point['rate'])} of {point['samples']:,} samples are copies by the {ONSET_WORDS}, judged "
                f"against its own digits; {pct(point['own_share'])} have their nearest of all 60,000 training digits "
                f"among its own (chance {pct(point['n'] / 60_000)}); the classifier recognises "
                f"{pct(point['recognised'])} of the samples",
            ]
        )
    for family, curve in dose_views.families(ch["dose"]).items():
        top = dose_views.largest_count(ch["dose"], family)
        row = top["by_criterion"][ONSET_CRITERION]
        runs = len(curve["runs"])
        planted = dose_views.canaries_per_run(ch["dose"], top, family)
        rows.append(
            [
                f"{MODEL_NAMES[family]}, {planted} pen-stroke canaries each planted {top['count']:,} "
                "times among all 60,000 digits (chapter 6)",
                f"each comes back in {pct(row['share'], row['ci_low'], row['ci_high'])} of samples on average by "
                f"the {ONSET_WORDS}" + (f" ({runs} training runs)" if runs > 1 else "") + "; the closest sample lies "
                f"{top['closest_distance']:.2f} from its canary in pixel distance",
            ]
        )
    glue(
        "findings_caveat",
        f"All of this is at the {main.scale} scale, with small models. For the three main models, "
        + model_quality_sentence(*main_model_quality(main))
        + ".",
    )
    show_html(
        html_table(
            ["what was measured (where)", "result"],
            rows,
            f"The main measurements ({scale_note(main)}). The {HEADLINE_WORDS} calls {pct(baseline)} of "
            "independent test digits copies; chapter 2 shows what it and the other definitions miss.",
        )
    )


def census_findings(census) -> list[list[str]]:
    """The findings table's census rows: per model, the headline definition's count among all its census samples,
    the most its rate can be at 95%, and the same definition's false-alarm rate on independent test digits."""
    from mnistmem.book.census import census_families

    rows = []
    for family in census_families(census):
        summary = census.summary(f"census_{family}")
        head = next(r for r in summary["criteria"] if r["criterion"] == HEADLINE)
        rows.append(
            [
                f"{MODEL_NAMES[family]}, {summary['n']:,} samples searched (chapter 6)",
                f"{head['count']:,} are copies by the {HEADLINE_WORDS} ({bound_pct(head['count'] / summary['n'])}; "
                f"at most {bound_pct(head['rate_upper_95'])} at 95% confidence), against "
                f"{pct(head['baseline_rate'])} of independent test digits",
            ]
        )
    return rows


def conclusions(ch) -> None:
    """Glue one sentence per objection, each computed from the results the earlier chapters show."""
    main = ch["main"]
    beyond, c_t = [], {}
    for family in ("gan", "vae", "diffusion"):
        summary = main.summary(f"score_{family}")
        criteria = summary["criteria"]
        above = [r for r in criteria if r["excess_ci_low"] > 0]
        if above:
            beyond.append(f"the {MODEL_SUBJECTS[family]} under {len(above)} of {len(criteria)} definitions")
        if summary.get("c_t") is not None:
            c_t[family] = summary["c_t"]
    glue("concl_definitions", f"{len(criteria) + bool(c_t)}")
    glue("concl_c_t", c_t_summary(c_t))
    glue(
        "concl_main",
        "Trained on all 60,000 digits, "
        + (
            "none of the three models produced more copies than independent handwriting does, under any of the "
            "definitions."
            if not beyond
            else "more samples counted as copies than independent test digits do for " + "; ".join(beyond) + "."
        ),
    )
    smallest = smallest_runs(ch["onset"])
    glue(
        "concl_size",
        " ".join(
            f"Trained on only {p['n']:,} digits for {p['steps']:,} steps, the {MODEL_SUBJECTS[f]}'s samples were "
            f"copies by the {ONSET_WORDS} {pct(p['rate'])} of the time"
            + (
                ""
                if p["own_share"] is None
                else f", and {pct(p['own_share'])} had their nearest training image among those {p['n']:,} "
                f"(chance: {pct(p['n'] / 60_000)})"
            )
            + (
                ""
                if p["quality"] >= TARGETS[f]["recognised_share"]
                else f", though the classifier recognised only {pct(p['recognised'])} of them as digits"
            )
            + "."
            for f, p in sorted(smallest.items())
        ),
    )
    contrast = ""
    diffusion_main = main.summary("score_diffusion")["criteria"]
    small = smallest.get("diffusion")
    if small is not None:
        main_copies = any(r["excess_ci_low"] > 0 for r in diffusion_main)
        small_copies = small["low"] > small["bar"]
        same = main.sampler_size(main.stage("sample_diffusion")["config"]["from"]) == ch["onset"].sampler_size(
            small["stage"]
        )
        if small_copies and not main_copies:
            contrast = (
                ("The same diffusion architecture" if same else "A diffusion model of the same design")
                + " emitted no copies when trained on 60,000 digits, and "
                + ("did" if same else "a smaller one did")
                + f" when trained on {small['n']:,}: whether a model emits copies is a property of a particular "
                'model and its training, not of "generative models" as such.'
            )
        elif small_copies and main_copies:
            contrast = "The diffusion model emitted copies both when trained on 60,000 digits and on fewer."
        else:
            contrast = (
                f"Even trained on {small['n']:,} digits, the diffusion model's copies did not rise clearly above what "
                "independent handwriting reaches at this scale."
            )
    glue("concl_contrast", contrast)
    if "census" in ch.results:
        from mnistmem.book.census import census_families

        census = ch["census"]
        families = census_families(census)
        glue("concl_census", census_conclusion({f: census.summary(f"census_{f}") for f in families}))
    glue("concl_duplication", dose_sentence(dose_views.families(ch["dose"])))
    if "storage" in ch.results:
        storage = ch["storage"]
        glue(
            "concl_storage",
            extraction_sentence(storage.summary("storage")["models"], storage.stage("storage")["config"]),
        )
    if "unlearning" in ch.results:
        glue("concl_unlearning", unlearning_conclusion(ch["unlearning"]))
    small_copies = small is not None and small["low"] > small["bar"]
    fewest = dose_views.fewest_copies_reproduced(ch["dose"], ONSET_CRITERION)
    glue("concl_overall", overall_answer(not beyond, small["n"] if small_copies else None, fewest))
    glue("concl_randomness", randomness_conclusion(ch["onset"], ch["randomness"]))


def randomness_conclusion(onset, randomness) -> str:
    """Chapter 10's answer to "sampling is random": the share of all seeds that bring back each training digit of
    the model trained on the fewest digits (`seed_share`), then the regeneration evidence."""
    share = onset.summary(seed_share_stage(onset))
    text = ""
    if share["copies"]:
        top = share["digits"][0]
        reproduced = share["training_digits"] - share["digits_never"]
        text = (
            f"Of {share['n']:,} seeds of the diffusion model trained on {share['training_digits']:,} digits, "
            f"{pct(share['copy_share'])} drew a copy; {reproduced:,} of its {share['training_digits']:,} digits came "
            f"back, each at a rate of its own, the most often in {pct(top['share'])} of all seeds (about one in "
            f"{1 / top['share']:,.0f}). "
        )
    return text + regenerated_copies_sentence(randomness)


def limits(ch) -> None:
    """`limits_models`: how big and how well trained the models are, from the results (chapter 10's limits)."""
    main, training = ch["main"], ch["training"]
    hours = [
        training.summary(f"curve_{family}")["curve"][-1].get("train_hours")
        for family in ("gan", "vae", "diffusion")
        if f"curve_{family}" in training.manifest["stages"]
    ]
    hours = [h for h in hours if h]
    trained = (
        f"The three main models were trained for {min(hours):.1f} to {max(hours):.1f} hours on two processor cores"
        if hours
        else "The three main models were trained on two processor cores"
    )
    glue(
        "limits_models",
        f"{trained}; {model_quality_sentence(*main_model_quality(main))}. The models of the other experiments "
        "(smaller training sets, planted duplicates, unlearning) are smaller still and were trained for minutes. How "
        "copying changes with a model's size is not measured here, and how it changes with training time only along "
        "the main models' own training (chapters 3 to 5).",
    )
