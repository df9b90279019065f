"""A live control shows itself in a notebook, and a note (not a broken box) in the static book."""

from __future__ import annotations

from mnistmem.book import widgets


def test_static_book_gets_a_note_not_a_broken_box(monkeypatch, capsys):
    monkeypatch.setenv("MNISTMEM_BOOK_BUILD", "1")
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    widgets.show(object())
    assert "needs a running Python kernel" in shown[0].data
