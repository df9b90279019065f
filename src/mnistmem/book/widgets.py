"""Showing a live control (ipywidgets) to readers who run a chapter in Jupyter, Colab or Binder.

A control recomputes with real code when its value changes (the unlearning chapter's `ForgetExplorer`). In the
static book there is no kernel to run it, so `show()` prints a short note instead of an empty box. The questions
a reader asks first — is this digit, drawn, uploaded or picked, in the training set; which samples come closest
to a given training digit — need no kernel at all: the search page answers them in the browser
(`mnistmem.book.search_page`).
"""

from __future__ import annotations

import html

import numpy as np

from mnistmem.book.display import in_book_build
from mnistmem.book.figures import png_data_uri

KERNEL_NOTE = (
    '<div class="mnistmem-note">This control recomputes live and needs a running Python kernel. '
    "Open this chapter in Colab or Binder with the rocket button at the top of the page.</div>"
)


def show(control) -> None:
    """Display a control's widget in a live notebook, or a note in the static book."""
    from IPython.display import HTML, display

    if in_book_build():
        display(HTML(KERNEL_NOTE))
    else:
        display(control.widget)


def _img(image: np.ndarray, caption: str, scale: int = 3) -> str:
    size = image.shape[1] * scale
    return (
        f'<figure style="display:inline-block;margin:4px;text-align:center">'
        f'<img src="{png_data_uri(image)}" width="{size}" alt="{html.escape(caption)}" '
        f'style="image-rendering:pixelated"><figcaption style="font-size:11px">{html.escape(caption)}</figcaption>'
        f"</figure>"
    )
