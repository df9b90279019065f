"""The rules that turn results into the book's sentences, on hand-made summaries (edge cases included)."""

from __future__ import annotations

from dataclasses import dataclass

from mnistmem import views

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
    text = views.regeneration_sentence(
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
    same = views.regeneration_sentence(
        regeneration(
            [{"model": "gan", "drawn_on": None, "n": 64, "identical": 64, "max_grey_levels": 0, "max_distance": 0.0}],
            cpu=EPYC,
        )
    )
    assert "64 of 64 GAN samples came out identical, bit for bit." in same and "differ" not in same
    assert "does not name" in same and "an AMD EPYC 7B13 processor with AVX2 vector units only" in same
    assert views.regeneration_sentence(regeneration([{"model": "vae", "drawn_on": None, "skipped": "x"}])) == ""
    assert views.regeneration_sentence(FakeResult({"stages": {}})) == ""
