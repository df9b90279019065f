"""The rules that turn results into the book's sentences, on hand-made summaries (edge cases included)."""

from __future__ import annotations

from dataclasses import dataclass

from mnistmem.book import figures, sentences

XEON = {"model": "Intel(R) Xeon(R) Processor", "kind": "intel-xeon-amx", "flags": [], "torch_capability": "AVX512"}
EPYC = {"model": "AMD EPYC 7B13", "kind": "amd-epyc-avx2", "flags": [], "torch_capability": "AVX2"}


@dataclass
class FakeResult:
    manifest: dict

    def summary(self, stage: str) -> dict:
        return self.manifest["stages"][stage]["summary"]


def regeneration(models: list[dict], cpu: dict = XEON) -> FakeResult:
    return FakeResult({"stages": {"regeneration": {"summary": {"regenerated_on": cpu, "models": models}}}})


def test_regeneration_across_cpus_names_both_and_bounds_the_difference():
    text = sentences.regeneration_sentence(
        regeneration(
            [
                {
                    "model": "diffusion",
                    "drawn_on": EPYC,
                    "n": 512,
                    "identical": 422,
                    "max_grey_levels": 3,
                    "max_distance": 0.0222,
                },
                {"model": "vae", "drawn_on": EPYC, "skipped": "its weights are not committed"},
            ]
        )
    )
    assert "drawn on an AMD EPYC 7B13 processor with AVX2 vector units only;" in text
    assert "422 of 512 diffusion-model samples" in text and "other 90 differ by at most 3 grey levels" in text
    assert "an Intel Xeon processor with AVX-512 and AMX matrix units" in text and "0.022" in text
    assert "vae" not in text.lower()  # a skipped model is not counted


def test_regeneration_all_identical_unknown_origin_and_nothing_checked():
    same = sentences.regeneration_sentence(
        regeneration(
            [{"model": "gan", "drawn_on": None, "n": 64, "identical": 64, "max_grey_levels": 0, "max_distance": 0.0}],
            cpu=EPYC,
        )
    )
    assert "64 of 64 GAN samples came out identical, bit for bit." in same and "differ" not in same
    assert "does not name" in same and "an AMD EPYC 7B13 processor with AVX2 vector units only" in same
    assert sentences.regeneration_sentence(regeneration([{"model": "vae", "drawn_on": None, "skipped": "x"}])) == ""
    assert sentences.regeneration_sentence(FakeResult({"stages": {}})) == ""


def test_thresholds_print_with_the_digits_that_matter():
    text = figures.threshold_text
    assert [text(v) for v in (0.75, 0.9997, 0.99, 1.0, 1 / 3, 0.99995, 2.5, 0.0)] == [
        "0.75",
        "0.9997",
        "0.99",
        "1",
        "0.333",
        "0.99995",
        "2.5",
        "0",
    ]
    assert text(0.99973456) == "0.999735" and text(0.8274509803921568) == "0.827"


def test_threshold_words_follow_direction_and_inclusiveness():
    assert sentences.copy_words({"direction": "below", "inclusive": True}) == "at most"
    assert sentences.copy_words({"direction": "below", "inclusive": False}) == "below"
    assert sentences.copy_words({"direction": "above", "inclusive": True}) == "at least"
    assert sentences.copy_words({"direction": "above", "inclusive": False}) == "above"


def test_c_t_says_what_its_sign_means():
    under = sentences.c_t_sentence(14.26)
    assert "C_T = +14.3" in under and "farther" in under and "under-fitting" in under and "not of copying" in under
    copying = sentences.c_t_sentence(-3.21)
    assert "C_T = −3.2" in copying and "closer" in copying and "memorisation" in copying
    assert "farther" not in copying
    neither = sentences.c_t_sentence(0.64)
    assert "C_T = +0.64" in neither and "neither copying nor under-fitting" in neither
    assert "under-fitting, not copying" in sentences.c_t_reading(sentences.C_T_NEAR_ZERO)
    assert "copying" in sentences.c_t_reading(-sentences.C_T_NEAR_ZERO) and "closer" in sentences.c_t_reading(-5)


def test_c_t_summary_one_reading_or_one_per_model():
    same = sentences.c_t_summary({"gan": 14.3, "vae": 4.9, "diffusion": 12.2})
    assert "C_T = +14.3 for the GAN, C_T = +4.9 for the VAE and C_T = +12.2 for the diffusion model" in same
    assert "in each case the samples lie farther" in same
    mixed = sentences.c_t_summary({"gan": 9.0, "diffusion": -4.0})
    assert "C_T = +9.0 for the GAN (its samples lie farther" in mixed
    assert "C_T = −4.0 for the diffusion model (its samples lie closer" in mixed
    assert sentences.c_t_summary({}) == ""


def _ratio(count: int, n: int = 10_000, high: float = 0.000384) -> dict:
    return {"count": count, "n": n, "ci_high": high}


def test_scale_up_note_says_bounds_not_counts_and_copies_not_works():
    none = sentences.scale_up_note({"gan": _ratio(0), "vae": _ratio(0)})
    assert "upper bound" in none and "not a count" in none and "every middle number is 0" in none
    assert "10,000 samples leave room for a share of up to 0.04%" in none
    assert "distinct works reproduced" in none
    some = sentences.scale_up_note({"gan": _ratio(0), "vae": _ratio(0), "diffusion": _ratio(45, high=0.03)})
    assert "every middle number" not in some and "The GAN and VAE produced no more copies" in some and "them" in some
    found = sentences.scale_up_note({"diffusion": _ratio(45, high=0.03)})
    assert "produced no more copies" not in found and "distinct works reproduced" in found


def _storage_model(tag: str, sizes: list[int], index: list[int], medoid: list[float]) -> dict:
    return {
        "model": tag,
        "clusters": len(sizes),
        "clusters_matching_training_images": sum(d <= 0.75 for d in medoid),
        "cluster_sizes": sizes,
        "cluster_training_index": index,
        "cluster_medoid_distance": medoid,
    }


def test_extraction_sentence_counts_clusters_by_their_medoid():
    config = {"radius": 0.75, "min_cluster": 3}
    one = sentences.extraction_sentence([_storage_model("diffusion_100", [3], [2012], [0.39])], config)
    assert "formed 1 cluster of 3 or more" in one and "1 of 1 turned out to be a real training image" in one
    assert "3 samples of the diffusion model trained on 100 digits gather around training image #2012" in one
    assert "0.39" in one
    three = sentences.extraction_sentence(
        [_storage_model("gan", [4, 3], [5, 9], [0.9, 0.5]), _storage_model("vae", [5], [7], [0.6])], config
    )
    assert "formed 3 clusters" in three and "2 of 3 turned out to be real training images" in three
    assert "in the closest match, 3 samples of the GAN trained on all 60,000 digits" in three and "#9" in three
    nothing = sentences.extraction_sentence([_storage_model("gan", [], [], [])], config)
    assert "no 3 or more samples were near-identical" in nothing


# ------------------------------------------------------------------------------- the book's overall answer
def test_the_overall_answer_follows_the_three_facts_it_is_built_from():
    clean = sentences.overall_answer(True, None, None)
    assert "show no stored copy" in clean and "No smaller or duplicated" in clean and "weights" not in clean
    both = sentences.overall_answer(True, 100, 1000)
    assert "on only 100 digits or on data in which one image appears 1,000 times" in both
    assert "is in their weights" in both and "show no stored copy" in both
    against = sentences.overall_answer(False, None, None)  # a result against the thesis's premise is said as plainly
    assert against.startswith("Even the models trained on all 60,000 digits emitted more copies")


class FakeUnlearning:
    """The unlearning result's summaries, as `unlearning_facts.method_rows` reads them (no verdicts stage):
    hits out of `n` samples before forgetting, and after each method (and after relearning)."""

    def __init__(
        self, before: int, after: dict[str, tuple[int, int | None]], n: int = 1000, sisa_before=None, fid=None
    ):
        self.before, self.after, self.n, self.manifest = before, after, n, {"stages": {}}
        self.sisa_before = before if sisa_before is None else sisa_before
        self.fid = fid or {}  # MNIST-FID by stage ("choose", "sisa_train", or a method), default 100

    def _record(self, hits: int) -> dict:
        return {"hits": hits, "n": self.n, "share": hits / self.n}

    def summary(self, stage: str) -> dict:
        if stage == "choose":
            return {"before": {"canary": self._record(self.before), "fid": self.fid.get("choose", 100.0)}}
        if stage == "sisa_train":
            return {"before": {"canary": self._record(self.sisa_before), "fid": self.fid.get("sisa_train", 100.0)}}
        if stage == "retrain_digit":
            return {"skipped": "no digit"}
        if stage == "retrain_canary":
            base = {"cost": {"images": 1000, "seconds": 10.0, "steps": 100}}
        elif stage == "diff_canary":
            return {"applied": {}}
        else:
            base = {"cost": {"images": 250, "seconds": 2.5, "steps": 25}}
        method = stage.removesuffix("_canary")
        hits, again = self.after[method]
        relearned = None if again is None else {"forgotten": self._record(again)}
        after = {"forgotten": self._record(hits), "fid": self.fid.get(method, 100.0)}
        return {**base, "after": after, "relearned": relearned}


def test_the_unlearning_conclusion_tells_removed_from_reduced_from_hidden():
    result = FakeUnlearning(120, {"retrain": (0, None), "sisa": (0, 1), "finetune": (0, 40), "neggrad": (30, 28)})
    text = sentences.unlearning_conclusion(result)
    assert text.startswith("Before forgetting, the small model emitted the planted sign in 12.00% of its samples (120")
    assert "removed by retrain from scratch and SISA (retrain one shard)" in text  # one back in 1,000 is chance
    assert "reduced but still emitted after NegGrad" in text
    assert "hidden, and brought back by the relearning attack, by fine-tune on the rest" in text
    assert "fine-tune on the rest 0.00% (4.00% after the relearning attack)" in text
    assert "cannot tell" not in text


def test_the_unlearning_conclusion_claims_nothing_a_weak_base_cannot_show():
    """A base model that emitted the sign in 2 of 500 samples: 0 afterwards is within chance of that, so no
    method is said to have removed it (as in the committed cpu-scale results)."""
    result = FakeUnlearning(2, {"retrain": (0, None), "sisa": (0, 0), "finetune": (0, 1), "neggrad": (1, 0)}, n=500)
    text = sentences.unlearning_conclusion(result)
    assert "removed" not in text and "hidden" not in text and "At this scale the sign was" not in text
    assert "the counts cannot tell a change from chance" in text and "(2 of 500)" in text
    assert sentences.forgetting_outcome((2, 500), (0, 500), None) == "undecided"
    assert sentences.forgetting_outcome((60, 500), (0, 500), (30, 500)) == "hidden"


def test_an_item_the_relearning_attack_teaches_a_model_that_never_held_it_is_not_called_hidden():
    """The attack adds look-alike digits: if it brings the item back as often in the retrained model (the control),
    the look-alikes taught it and the method is not caught hiding anything."""
    assert sentences.forgetting_outcome((60, 500), (0, 500), (30, 500), control=(28, 500)) == "removed"
    assert sentences.forgetting_outcome((60, 500), (0, 500), (30, 500), control=(2, 500)) == "hidden"


def test_a_return_only_the_copy_descriptor_sees_is_not_called_hidden():
    """Measured: a wrecked model's near-blank samples were flagged as copies of a thin glyph by the copy
    descriptor alone; without the pixel-distance definition's agreement the book does not say the item came back."""
    unseen_by_pixels = ((0, 500), (0, 500))
    assert (
        sentences.forgetting_outcome((60, 500), (0, 500), (30, 500), control=(2, 500), confirm=unseen_by_pixels)
        == "unconfirmed"
    )
    seen_by_pixels = ((25, 500), (1, 500))
    assert (
        sentences.forgetting_outcome((60, 500), (0, 500), (30, 500), control=(2, 500), confirm=seen_by_pixels)
        == "hidden"
    )


def test_an_item_gone_because_the_model_is_wrecked_is_not_called_removed():
    after = {"retrain": (0, None), "sisa": (0, 0), "finetune": (50, 50), "neggrad": (0, 0)}
    text = sentences.unlearning_conclusion(FakeUnlearning(120, after, fid={"choose": 500.0, "neggrad": 1300.0}))
    assert "removed by retrain from scratch and SISA (retrain one shard);" in text
    assert "gone after NegGrad, but only because the model no longer draws digits well" in text


def test_sisa_is_judged_against_its_own_ensemble_before_forgetting():
    """The SISA ensemble is another model than the base: if it never emitted the sign, its 0 afterwards
    removed nothing, however often the base model emitted it."""
    after = {"retrain": (0, None), "sisa": (0, 0), "finetune": (50, 50), "neggrad": (40, 40)}
    text = sentences.unlearning_conclusion(FakeUnlearning(120, after, sisa_before=0))
    assert "removed by retrain from scratch;" in text or text.count("removed by retrain from scratch") == 1
    assert (
        "SISA (retrain one shard) 0.00% (0.00% after the relearning attack), whose own model emitted it in 0 of" in text
    )
    assert "For SISA (retrain one shard), the counts cannot tell" in text


def criterion(name: str, count: int, n: int = 10_000, baseline_rate: float = 0.001, excess_ci_low: float = -0.001):
    return {
        "criterion": name,
        "count": count,
        "rate": count / n,
        "baseline_rate": baseline_rate,
        "excess_ci_low": excess_ci_low,
    }


def test_the_verdict_on_a_model_says_none_at_the_test_digits_level_or_how_many_above_it():
    """Three cases of chapters 3-5's verdict: not one sample flagged; some flagged, but no more than among
    independent test digits (the interval of the excess reaches zero); more than the test digits under some
    definitions (a result for the thesis), each named with its rate beside the test digits' rate."""
    distances = dict(closest=1.234, closest_test=2.5, test_digits=10_000)
    none = {"n": 10_000, "criteria": [criterion("l2", 0), criterion("nn_ratio", 0)]}
    text = sentences.verdict_sentence(none, **distances)
    assert text.startswith("No definition counts a single one of these 10,000 samples as a copy")
    assert "distance 1.23" in text and "2.50 for the closest of the 10,000 test digits" in text

    level = {"n": 10_000, "criteria": [criterion("l2", 3), criterion("nn_ratio", 12)]}
    text = sentences.verdict_sentence(level, **distances)
    assert "No definition finds more copies among these 10,000 samples than among independent test digits" in text
    assert "the most any definition flags is 12, by the nearest-neighbour ratio" in text

    above = {
        "n": 10_000,
        "criteria": [criterion("l2", 3), criterion("nn_ratio", 250, excess_ci_low=0.02), criterion("ssim", 0)],
    }
    text = sentences.verdict_sentence(above, **distances)
    assert text.startswith("More samples count as copies than independent test digits do under 1 of 3 definitions")
    assert "250 by the nearest-neighbour ratio (2.50%, test digits 0.10%)" in text and "pixel distance" not in text


def _curve(rows: list[tuple[float, float, float, int, float]], targets=None) -> dict:
    """A training curve summary from (epochs, recognised share, FID, headline copies, C_T) rows."""
    return {
        "n": 2000,
        "headline": "copy_descriptor",
        "targets": targets or {"recognised_share": 0.9, "fid": 15.0},
        "curve": [
            {
                "step": 1000 * (i + 1),
                "epochs": e,
                "recognised_share": s,
                "fid": f,
                "copies": {"copy_descriptor": c},
                "c_t": t,
            }
            for i, (e, s, f, c, t) in enumerate(rows)
        ],
    }


def test_quality_progress_meets_its_bars_and_copies_rise():
    text = sentences.quality_progress_sentence(
        "diffusion", _curve([(4.3, 0.62, 90.0, 0, 11.0), (21.3, 0.91, 14.2, 3, 1.2), (42.7, 0.93, 12.0, 7, -0.4)])
    )
    assert "fell to 12.0 at its best (43 epochs; the bar is 15, met)" in text
    assert "up to 93.0% of its samples (43 epochs; the bar is 90%, met)" in text
    assert "flagged 0 of its 2,000 samples at the first checkpoint, 7 at the last" in text
    assert "C_T went from +11.0 to −0.40" in text and "risen again" not in text


def test_quality_progress_misses_its_bars_says_so_and_names_a_late_rise():
    text = sentences.quality_progress_sentence(
        "gan", _curve([(2.1, 0.5, 60.0, 2, 9.0), (8.7, 0.7, 30.0, 5, 6.0), (17.0, 0.66, 45.0, 3, 7.0)])
    )
    assert "fell to 30.0 at its best (9 epochs; the bar is 15, not met)" in text
    assert "the bar is 90%, not met" in text and "risen again to 45.0" in text
    assert "2 of its 2,000 samples at the first checkpoint, 3 at the last and most, 5, at 9 epochs" in text
    assert "still improving" not in text and "stopped improving" not in text  # a late rise says enough


def test_quality_progress_says_whether_a_model_short_of_its_bar_was_still_improving():
    rising = [
        (10.0, 0.5, 300.0, 0, 9.0),
        (20.0, 0.6, 200.0, 0, 8.0),
        (30.0, 0.7, 150.0, 0, 7.0),
        (40.0, 0.72, 104.3, 0, 6.4),
    ]
    text = sentences.quality_progress_sentence("gan", _curve(rising))
    assert "still improving when training stopped (its FID went from 150.0 to 104.3 between 30 epochs and 40" in text
    flat = [(10.0, 0.6, 250.0, 0, 3.0), (30.0, 0.71, 162.0, 0, 1.8), (40.0, 0.71, 159.6, 0, 1.8)]
    text = sentences.quality_progress_sentence("vae", _curve(flat, {"recognised_share": 0.8, "fid": 50.0}))
    assert "stopped improving (its FID went from 162.0 to 159.6" in text and "would not reach the bar" in text
    met = [(10.0, 0.95, 30.0, 0, 1.0), (30.0, 0.95, 12.0, 0, 0.5), (40.0, 0.95, 11.9, 0, 0.4)]
    assert "improving" not in sentences.quality_progress_sentence("diffusion", _curve(met))


def test_quality_progress_no_copies_and_no_checkpoints():
    none = sentences.quality_progress_sentence(
        "vae", _curve([(5.0, 0.81, 49.0, 0, 3.0)], {"recognised_share": 0.8, "fid": 50.0})
    )
    assert "At no checkpoint did the" in none and "any of its 2,000 samples" in none and "C_T" not in none
    assert "(5 epochs; the bar is 50, met)" in none
    empty = sentences.quality_progress_sentence("vae", {**_curve([]), "curve": []})
    assert "no kept checkpoints yet" in empty


def test_model_quality_names_the_models_below_their_bars():
    bar = {"recognised_share": 0.9, "fid": 15.0}
    reference = {"confident_share": 0.978, "fid": 1.6}
    good = {
        "gan": {"confident_share": 0.93, "fid": 9.0, "targets": bar},
        "vae": {"confident_share": 0.85, "fid": 40.0, "targets": {"recognised_share": 0.8, "fid": 50.0}},
    }
    text = sentences.model_quality_sentence(good, reference)
    assert "85.00% to 93.00%" in text and "9.0 to 40.0" in text and "real digits: 1.6" in text
    assert text.endswith("each meets the quality bar set for it before its copies were counted")
    weak = {**good, "diffusion": {"confident_share": 0.6, "fid": 194.0, "targets": bar}}
    text = sentences.model_quality_sentence(weak, reference)
    assert "the diffusion model (60.00% recognised and FID 194.0, against bars of 90% and 15) falls short" in text
    assert "GAN (" not in text and "better-trained models may behave differently" in text


def test_training_words_come_from_the_recipe_and_the_logged_time():
    from mnistmem.book import progress

    assert progress.passes_words(29.87) == "30 passes over them" and progress.passes_words(1.02) == "one pass over them"
    assert progress.passes_words(0.0027) == "0.0027 of one pass over them"
    assert progress.duration_words(8.54) == "about 8.5 hours" and progress.duration_words(0.57) == "about 34 minutes"
    assert progress.duration_words(0.001) == "under a minute"
    gan = {"model": "gan", "ema": 0.999, "lr_schedule": "constant"}
    assert progress.recipe_words(gan).endswith("rather than from its last weights (Yazıcı et al. 2019)")
    diffusion = {"model": "diffusion", "model_kwargs": {"snr_gamma": 5.0}, "lr_schedule": "cosine", "grad_clip": 1.0}
    words = progress.recipe_words(diffusion)
    assert words.startswith("a loss that weighs") and ", a learning rate that rises" in words
    assert words.endswith(" and gradient clipping")
    assert progress.recipe_words({"model": "vae"}) == "a constant learning rate"


def _point(step, solver_steps, fid):
    return {"step": step, "solver_steps": solver_steps, "fid": fid, "recognised_share": 0.9}


def test_solver_steps_blames_the_sampler_only_when_the_final_model_wins_at_more_steps():
    curve = [{"step": 12_000, "fid": 26.8}, {"step": 20_000, "fid": 36.2}]
    points = [_point(12_000, 40, 15.1), _point(20_000, 25, 18.7), _point(20_000, 40, 12.7)]
    text = sentences.solver_steps_sentence(points, curve, curve_steps=15, used_steps=40)
    assert "36.2 with 15 steps, 18.7 with 25 steps and 12.7 with 40 steps" in text
    assert "beats the snapshot after 12,000 training steps (12.7 against 15.1)" in text
    assert "too few steps, not from training longer" in text and text.endswith("drawn with 40 steps.")
    worse = [_point(12_000, 40, 11.0), _point(20_000, 40, 12.7)]
    text = sentences.solver_steps_sentence(worse, curve, curve_steps=15, used_steps=40)
    assert "training longer did make this model worse" in text and "too few steps" not in text
    alone = sentences.solver_steps_sentence([_point(20_000, 40, 12.7)], [], curve_steps=15, used_steps=40)
    assert alone.startswith("Drawn from the final model on the same seeds, the MNIST-FID is 12.7 with 40 steps.")
    assert sentences.solver_steps_sentence([], curve, curve_steps=15, used_steps=40) == ""


def _census(count, n, upper, baseline=0.002, excess_low=-0.001, l2=0):
    return {
        "n": n,
        "criteria": [
            {
                "criterion": "copy_descriptor",
                "count": count,
                "rate_upper_95": upper,
                "baseline_rate": baseline,
                "excess_ci_low": excess_low,
            },
            {"criterion": "l2", "count": l2, "rate_upper_95": upper, "baseline_rate": 0.0, "excess_ci_low": -0.001},
        ],
    }


def test_census_sentence_bounds_a_zero_and_calls_an_excess_only_when_its_interval_says_so():
    none = sentences.census_sentence("gan", _census(0, 1_000_000, 3.84e-6))
    assert "Among 1,000,000 samples of the GAN" in none and "found no copy" in none
    assert "at most 0.00038% of its samples" in none and "none lies within the pixel-distance threshold" in none
    some = sentences.census_sentence("vae", _census(2100, 1_000_000, 0.00219, excess_low=-0.0002, l2=3))
    assert "counted 2,100 as copies (0.21%; at most 0.22% at 95% confidence)" in some
    assert "no more than independent handwriting gives" in some and "3 lie within" in some
    more = sentences.census_sentence("diffusion", _census(900, 50_000, 0.019, excess_low=0.01))
    assert "more than independent handwriting gives" in more and "no more" not in more
    assert sentences.bound_pct(0) == "0%" and sentences.bound_pct(4.1e-4) == "0.041%"


def _strict(counts, digits, ratio_passed=0, stored=100, flagged=100):
    return {
        "counts": counts,
        "union": sum(digits.values()),
        "digits": digits,
        "ratio_passed": ratio_passed,
        "stored": stored,
        "flagged": flagged,
    }


def test_strict_flags_sentence_says_what_the_flags_resemble_and_whether_they_pass_the_ratio_test():
    crowd = sentences.strict_flags_sentence("gan", _strict({"l2": 35, "ssim": 36}, {1: 40}))
    assert "35 by pixel distance and 36 by structural similarity (SSIM) (40 samples in all)" in crowd
    assert "Every one of them lies nearest to a training 1: thin strokes" in crowd
    assert "None of them passes the nearest-neighbour ratio test" in crowd
    mixed = sentences.strict_flags_sentence("vae", _strict({"l2": 9}, {7: 6, 3: 3}, ratio_passed=2))
    assert "6 of them lie nearest to a training 7" in mixed and "thin strokes" not in mixed
    assert "2 of them also pass the nearest-neighbour ratio test" in mixed and "candidates" in mixed
    kept = sentences.strict_flags_sentence("diffusion", _strict({"l2": 9000}, {1: 5000}, stored=5000, flagged=9000))
    assert "(of the 5,000 kept with their images)" in kept
    assert sentences.strict_flags_sentence("gan", _strict({"l2": 0}, {})).startswith("No definition besides")


def test_per_digit_sentence_names_each_model_s_largest_lean_against_the_training_set():
    training = [0.1] * 10
    gan = [0.1] * 10
    gan[9], gan[2] = 0.14, 0.06
    text = sentences.per_digit_sentence({"gan": gan}, training)
    assert text == (
        "Measured against the training set, the GAN makes too many 9s (14.00% of its samples against 10.00% of the "
        "training digits) and too few 2s (6.00% against 10.00%)."
    )


def test_census_conclusion_sorts_models_by_where_their_interval_lies():
    def summary(count, low, high):
        row = {"criterion": "copy_descriptor", "count": count, "excess_ci_low": low, "excess_ci_high": high}
        return {"n": 1_000_000, "criteria": [row]}

    text = sentences.census_conclusion(
        {
            "gan": summary(617, -0.001, 0.0001),
            "vae": summary(5000, 0.001, 0.004),
            "diffusion": summary(1, -0.002, -1e-3),
        }
    )
    assert text.startswith("Searching 1,000,000 samples of the GAN, 1,000,000 samples of the VAE and")
    assert "above the rate it gives independent test digits, beyond chance for the VAE (0.5%)" in text
    assert "no different from the rate it gives independent test digits for the GAN (0.062%)" in text
    assert "below the rate it gives independent test digits for the diffusion model" in text


def test_membership_phrase_reads_each_item_against_the_retrained_model():
    """An item the model still fits better than almost every unseen digit stands out as trained on; one whose loss
    dwarfs the retrained model's stands out as pushed away; anything else is read as the retrained model's level."""
    from mnistmem.book.unlearning_facts import PUSHED_AWAY, STANDS_OUT, membership_phrase

    retrained = {"membership": {"rank": 0.9, "item_loss": 0.5}}

    def entry(rank, loss):
        return {"membership": {"rank": rank, "item_loss": loss}}

    assert "still stands out as trained on" in membership_phrase(entry(0.0, 0.1), retrained, 200)
    assert "still stands out as trained on" in membership_phrase(entry(STANDS_OUT, 0.1), retrained, 200)
    pushed = membership_phrase(entry(1.0, 0.5 * PUSHED_AWAY * 3), retrained, 200)
    assert "pushed away" in pushed and "30 times" in pushed
    level = membership_phrase(entry(0.6, 0.4), retrained, 200)
    assert "about as the retrained model does" in level and "60.0% of 200" in level


def test_regenerated_copies_are_told_apart_by_the_cpu_kind_that_drew_them():
    """Copies regenerated on the kind of CPU that drew them are the bit-exactness claim; those regenerated on
    another kind are reported apart, never added to it."""
    same = {"same_cpu_kind": True, "regenerated": [{"identical": True}] * 5}
    other = {"same_cpu_kind": False, "regenerated": [{"identical": False}] * 3 + [{"identical": True}]}
    seeds = {"summary": {"models": [same, other]}}
    text = sentences.regenerated_copies_sentence(FakeResult({"stages": {"seeds": seeds}}))
    assert "Of 5 copies regenerated from their stored seed alone on the kind of processor that drew them, 5 " in text
    assert "Of 4 copies regenerated on another kind of processor than the one that drew them, 1 came out" in text
