import numpy as np
import pytest

from mnistmem import data
from mnistmem.canaries import CANARY_LABEL, render_canary
from mnistmem.dataspec import CanarySpec, DataSpec, DataSpecError


def test_canaries_appear_the_stated_number_of_times():
    spec = DataSpec(n=50, seed=3, canaries=(CanarySpec("©", 1), CanarySpec("section", 10), CanarySpec("¶", 100)))
    built = spec.build()
    assert len(built) == 50 + 1 + 10 + 100
    for k, (glyph, count) in enumerate([("©", 1), ("section", 10), ("¶", 100)]):
        rows = built.sources == -(k + 1)
        assert rows.sum() == count
        assert (built.labels[rows] == CANARY_LABEL).all()
        assert (built.images[rows] == render_canary(glyph)).all()
    digits = built.sources >= 0
    images, labels = data.load_mnist("train")
    assert np.array_equal(built.images[digits], images[built.sources[digits]])
    assert np.array_equal(built.labels[digits], labels[built.sources[digits]])


def test_canaries_are_distinct_visible_glyphs():
    glyphs = [render_canary(g) for g in ("©", "®", "§", "¶")]
    for i, a in enumerate(glyphs):
        assert a.shape == (28, 28) and a.dtype == np.uint8 and a.max() == 255
        assert (a > 128).sum() > 40  # real ink, MNIST-like stroke area
        assert a[:4].max() == 0 and a[-4:].max() == 0  # 20×20 box centred in 28×28, like MNIST
        for b in glyphs[i + 1 :]:
            assert np.abs(a.astype(int) - b).sum() > 1000


def test_stroke_canaries_are_deterministic_pen_strokes_that_plant_like_glyphs():
    a, again, other = render_canary("stroke:3"), render_canary("stroke:3"), render_canary("stroke:4")
    assert np.array_equal(a, again) and np.abs(a.astype(int) - other).sum() > 1000
    for image in (a, other):
        assert image.max() == 255 and 40 < (image > 128).sum() < 250  # an MNIST-like amount of ink
        assert image[:4].max() == 0 and image[-4:].max() == 0
    built = DataSpec(n=20, canaries=(CanarySpec("stroke:3", 5),)).build()
    assert (built.images[built.sources == -1] == a).all() and (built.sources == -1).sum() == 5
    for bad in ("stroke:x", "stroke:-1", "stroke:"):
        with pytest.raises(DataSpecError, match="stroke:K"):
            CanarySpec(bad, 1)


def test_the_planted_strokes_lie_farther_from_every_digit_and_each_other_than_most_digits_from_their_nearest():
    """`UNLIKE_DIGIT_STROKES` keeps its promise: each lies farther from every training digit, and from every
    other stroke, than 90% of the test digits lie from their nearest training digit."""
    from mnistmem.canaries import UNLIKE_DIGIT_QUANTILE, UNLIKE_DIGIT_STROKES
    from mnistmem.neighbors import knn

    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    bar = np.quantile(knn(test, train, k=1, progress=False)[0][:, 0], UNLIKE_DIGIT_QUANTILE)
    strokes = np.stack([render_canary(name) for name in UNLIKE_DIGIT_STROKES])
    assert len(UNLIKE_DIGIT_STROKES) == len(set(UNLIKE_DIGIT_STROKES)) == 21
    assert knn(strokes, train, k=1, progress=False)[0][:, 0].min() > bar
    assert knn(strokes, strokes, k=2, progress=False)[0][:, 1].min() > bar  # k=2: the first is itself


def test_subset_is_deterministic_and_exclude_removes():
    a = DataSpec(n=200, seed=7).build()
    assert np.array_equal(a.sources, DataSpec(n=200, seed=7).build().sources)
    assert not np.array_equal(a.sources, DataSpec(n=200, seed=8).build().sources)
    removed = tuple(int(i) for i in a.sources[:5])
    b = DataSpec(n=200, seed=7, exclude=removed).build()
    assert len(b) == 195 and not np.isin(removed, b.sources).any()


def test_round_trip_and_errors():
    spec = DataSpec(n=10, seed=1, exclude=(), canaries=(CanarySpec("copyright", 4),))
    assert DataSpec.from_dict(spec.to_dict()) == spec
    assert CanarySpec.parse("©:100") == CanarySpec("©", 100)
    for bad in (dict(n=0), dict(n=70_000), dict(exclude=(60_000,)), dict(split="test")):
        with pytest.raises(DataSpecError):
            DataSpec(**bad)
    with pytest.raises(DataSpecError, match="glyph"):
        CanarySpec("not-a-glyph", 1)
    with pytest.raises(DataSpecError, match="count"):
        CanarySpec("©", -1)
    with pytest.raises(DataSpecError, match="GLYPH:COUNT"):
        CanarySpec.parse("copyright")
    with pytest.raises(DataSpecError, match="unknown fields"):
        DataSpec.from_dict({"n": 5, "size": 3})
    outside = int(np.setdiff1d(np.arange(100), DataSpec(n=10).indices())[0])
    with pytest.raises(DataSpecError, match="exclude"):
        DataSpec(n=10, exclude=(outside,)).build()


def test_parts_are_disjoint_cover_the_set_and_round_trip():
    whole = DataSpec(n=201, seed=4).indices()
    halves = [DataSpec(n=201, seed=4, part=(k, 2)) for k in range(2)]
    a, b = (h.indices() for h in halves)
    assert not np.isin(a, b).any() and np.array_equal(np.sort(np.concatenate([a, b])), whole)
    assert abs(len(a) - len(b)) <= 1 and np.array_equal(a, DataSpec(n=201, seed=4, part=(0, 2)).indices())
    assert DataSpec.from_dict(halves[1].to_dict()) == halves[1] and halves[1].to_dict()["part"] == [1, 2]
    assert "part" not in DataSpec(n=5).to_dict()  # specs written before parts existed read the same
    for bad in ((2, 2), (0, 1), (0, 300), (0.5, 2), "01"):
        with pytest.raises(DataSpecError, match="data spec part must be"):
            DataSpec(n=201, part=bad)


def test_extra_digits_join_the_subset_keep_their_sources_and_round_trip():
    base = DataSpec(n=50, seed=3)
    outside = np.setdiff1d(np.arange(200), base.indices())[:3]
    spec = DataSpec(n=50, seed=3, extra=tuple(int(i) for i in outside[::-1]))
    built = spec.build()
    assert len(built) == 53 and np.isin(outside, built.sources).all()
    assert np.array_equal(np.setdiff1d(built.sources, outside), base.indices())
    assert DataSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["extra"] == sorted(outside.tolist())
    assert "extra" not in base.to_dict()  # specs written before `extra` existed read (and hash) the same
    inside = int(base.indices()[0])
    with pytest.raises(DataSpecError, match="already among the drawn digits"):
        DataSpec(n=50, seed=3, extra=(inside,)).build()
    for bad in ((60_000,), (5, 5), "12"):
        with pytest.raises(DataSpecError, match="data spec extra"):
            DataSpec(n=50, extra=bad)
