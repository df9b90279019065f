"""Extraction's building blocks: inpainting keeps the given pixels exactly, latent inversion recovers a planted
latent, and the membership score finds a planted gap and none where there is none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnistmem import data, extraction
from mnistmem.models import build_model
from mnistmem.models.base import FamilyModel, to_uint8

from .conftest import TINY


def test_prompt_masks_and_the_hidden_distance_ignores_what_the_prompt_showed():
    top, left, centre = (extraction.prompt_mask(k) for k in extraction.MASKS)
    assert top.sum() == left.sum() == 392 and centre.sum() == 196 and top[0, 27] and not top[27, 0]
    with pytest.raises(ValueError, match="top"):
        extraction.prompt_mask("bottom")
    digits = data.load_mnist("test")[0][:3]
    changed = digits.copy()
    changed[:, :14] = 255 - changed[:, :14]  # the shown part differs completely, the hidden part not at all
    assert np.array_equal(extraction.hidden_distance(changed, digits, top), np.zeros(3))
    assert (extraction.hidden_distance(changed, digits, ~top) > 1).all()


def test_inpainting_keeps_the_given_pixels_exactly_and_depends_only_on_the_seed():
    torch.manual_seed(0)
    model = build_model("diffusion", **TINY["diffusion"]).eval()
    originals = data.load_mnist("train")[0][:4]
    mask = extraction.prompt_mask("top")
    first = extraction.complete(model, originals, mask, seed=3, steps=4)
    assert first.shape == originals.shape and first.dtype == np.uint8
    assert np.array_equal(first[:, mask], originals[:, mask])  # the prompt comes back bit for bit
    assert np.array_equal(first, extraction.complete(model, originals, mask, seed=3, steps=4))
    assert not np.array_equal(first[:, ~mask], extraction.complete(model, originals, mask, seed=4, steps=4)[:, ~mask])


class LinearGenerator(FamilyModel):
    """A toy generator whose image is tanh(W z): a latent is determined by any 100 of its pixels."""

    family = "toy"

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(784, 8, generator=torch.Generator().manual_seed(1)) * 0.3)

    @property
    def latent_size(self) -> int:
        return 8

    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z @ self.weight.T).reshape(-1, 1, 28, 28)


def test_latent_inversion_recovers_a_planted_latent_from_half_the_image():
    model = LinearGenerator()
    planted = torch.randn(3, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        targets = to_uint8(model.from_latent(planted))
    mask = extraction.prompt_mask("top")
    images, latents, _ = extraction.invert_latent(model, targets, mask, steps=400, lr=0.05, prior=0.0)
    assert np.abs(latents - planted.numpy()).max() < 0.05  # found from the top half alone
    assert (extraction.hidden_distance(images, targets, mask) < 0.2).all()  # so the hidden half is retrieved
    assert all(p.requires_grad for p in model.parameters())  # the model is left as it was


def test_latent_inversion_of_a_gan_matches_the_prompt_better_than_a_random_sample():
    torch.manual_seed(0)
    gan = build_model("gan", **TINY["gan"]).eval()
    with torch.no_grad():
        targets = to_uint8(gan.from_latent(torch.randn(2, gan.latent_size, generator=torch.Generator().manual_seed(5))))
    mask = extraction.prompt_mask("left")
    found = extraction.complete(gan, targets, mask, seed=0, steps=150, starts=2)
    with torch.no_grad():
        random = to_uint8(gan.from_latent(torch.randn(2, gan.latent_size, generator=torch.Generator().manual_seed(6))))
    assert (
        extraction.hidden_distance(found, targets, ~mask) < extraction.hidden_distance(random, targets, ~mask)
    ).all()
    with pytest.raises(TypeError, match="inpaints"):
        extraction.invert_latent(build_model("diffusion", **TINY["diffusion"]), targets, mask)


def test_membership_finds_a_planted_gap_and_reads_chance_where_there_is_none():
    rng = np.random.default_rng(0)
    outsiders = rng.normal(1.0, 1.0, 800)
    gap = extraction.membership(rng.normal(0.0, 1.0, 800), outsiders, resamples=300)
    assert 0.7 < gap["auc"] < 0.82 and gap["auc_low"] > 0.5 and gap["tpr_at_1pct_fpr"] > 0.01
    none = extraction.membership(rng.normal(1.0, 1.0, 800), outsiders, resamples=300)
    assert none["auc_low"] < 0.5 < none["auc_high"]
    with pytest.raises(ValueError, match="at least 2"):
        extraction.membership(np.zeros(1), outsiders)


def test_blind_extraction_finds_planted_duplicates_and_not_a_cluster_of_unseen_handwriting():
    """The positive control of generate-and-filter: five near-copies each of two training digits among test
    digits are found as two candidates naming exactly those digits; a tight cluster of a digit that is not in
    the training set is a candidate too, but a miss (precision 2/3), and recall counts the copied digits."""
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    own = train[:500]
    rng = np.random.default_rng(0)

    def near(image, k):
        noise = rng.integers(-2, 3, size=(k, 28, 28))
        return np.clip(image[None].astype(int) + noise * (image[None] > 0), 0, 255).astype(np.uint8)

    samples = np.concatenate([near(own[7], 5), near(own[9], 5), near(test[0], 5), test[1:200]])
    found = extraction.blind_candidates(samples, own, bar=1.004, radius=0.75, min_size=3, top=10)
    named = sorted(c["nearest"] for c in found["candidates"] if c["distance"] <= found["bar"])
    assert named == [7, 9] and len(found["candidates"]) == 3
    assert found["precision"] == pytest.approx(2 / 3) and found["recall"] == 1.0
    assert found["copied_by_exact_search"] == 2
    empty = extraction.blind_candidates(test[1:100], own, bar=1.004, radius=0.75, min_size=3, top=10)
    assert empty["candidates"] == [] and empty["precision"] is None and empty["recall"] is None


def test_the_extraction_experiment_reads_every_regime_with_its_control_prompts(smoke_results):
    from mnistmem import results
    from mnistmem.experiments import extraction as experiment
    from mnistmem.experiments import scales

    result = results.load("extraction", "smoke", root=smoke_results)
    settings = scales.config("smoke", "extraction")
    for regime in settings["regimes"]:
        completion = result.summary(f"completion_{regime}")
        sets = {row["prompts"] for row in completion["rows"]}
        assert sets == ({"training", "test", "canaries"} if regime == "canaries" else {"training", "test"})
        for row in completion["rows"]:
            assert row["ci_low"] <= row["share"] <= row["ci_high"]
            assert row["best_hidden_distance"] <= row["median_hidden_distance"]
        examples = result.arrays(f"completion_{regime}", experiment.EXAMPLES_FILE)
        assert examples["training_top_original"].shape == examples["training_top_completion"].shape
        distance = examples["training_top_distance"]
        best = experiment.EXAMPLES_KEPT // 2
        assert list(distance[:best]) == sorted(distance[:best])  # the best first, in order, then the typical
        membership = result.summary(f"membership_{regime}")
        assert membership["auc_low"] <= membership["auc"] <= membership["auc_high"]
        assert ("canary_loss_percentile" in membership) == (regime == "canaries")
        blind = result.summary(f"blind_{regime}")
        assert blind["n"] == settings["blind_samples"] and len(blind["candidates"]) <= settings["candidates"]
        assert blind["hits"] == sum(c["distance"] <= blind["bar"] for c in blind["candidates"])
        assert blind["named"] <= blind["hits"]
        # every stage names its training set: the digits, and the canaries in the order the prompts hold them
        for summary in (completion, membership, blind):
            assert summary["training_digits"] == completion["training_digits"] > 0
            assert summary["canaries"] == completion["canaries"]
        if regime == "canaries":
            canaries = next(r for r in completion["rows"] if r["prompts"] == "canaries")
            assert len(canaries["per_canary"]) == canaries["n"] == len(completion["canaries"])
            assert sum(c["retrieved"] for c in canaries["per_canary"]) == canaries["retrieved"]
            assert len(membership["canary_loss_percentile"]) == len(completion["canaries"])
    for n in settings["label_sizes"]:
        rows = result.summary(f"label_{n}")["rows"]
        assert [r["label"] for r in rows] == [*range(10), None]  # each digit asked for, then nothing asked
        assert rows[-1]["n"] == 10 * rows[0]["n"] == 10 * settings["per_label"]
        for r in rows:
            assert r["ci_low"] <= r["share"] <= r["ci_high"] and r["distinct_copied"] <= r["copies"]
            assert (r["nearest_has_label"] is None) == (r["label"] is None)
