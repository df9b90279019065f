"""Showing figures the same way in the static book, in Jupyter and on Colab.

In the book build (`MNISTMEM_BOOK_BUILD=1`, set by `mnistmem book build`) a plotly figure becomes a plain
HTML fragment that uses the plotly.js bundled with the book, so pages work offline and figures respond
to their sliders and dropdowns with no kernel. In a live notebook the figure is shown with plotly's own
renderer. Either way every figure gets a text caption (for readers who cannot see it, and for print).
"""

from __future__ import annotations

import html
import os

BOOK_BUILD_ENV = "MNISTMEM_BOOK_BUILD"


def in_book_build() -> bool:
    """True while the static book is being executed."""
    return os.environ.get(BOOK_BUILD_ENV) == "1"


def figure_html(fig, caption: str, post_script: str | None = None) -> str:
    """The figure as an HTML `<figure>` with a caption, relying on the page's plotly.js.

    The figure's box gets its final height before plotly.js draws it, so the page does not jump as figures
    arrive (plotly's own default, "100%", is zero until the figure is drawn)."""
    from mnistmem.book.figures import wrap_figure_text

    wrap_figure_text(fig)
    height = fig.layout.height or 450
    body = fig.to_html(
        include_plotlyjs=False,
        full_html=False,
        default_height=f"{int(height)}px",
        config={"displaylogo": False, "responsive": True},
        post_script=post_script,
    )
    return (
        f'<figure class="mnistmem-figure">{body}'
        f'<figcaption class="mnistmem-caption">{html.escape(caption)}</figcaption></figure>'
    )


def show(fig, caption: str, post_script: str | None = None) -> None:
    """Display a plotly figure with its caption, as HTML in the book and natively in a notebook."""
    from IPython.display import HTML, Markdown, display

    if in_book_build():
        display(HTML(figure_html(fig, caption, post_script)))
    else:
        fig.show()
        display(Markdown(f"*{caption}*"))


def show_html(fragment: str) -> None:
    """Display an HTML fragment (a table) in the book and in notebooks alike."""
    from IPython.display import HTML, display

    display(HTML(fragment))


def glue(name: str, value) -> None:
    """Make `value` available to the chapter's prose as {glue:text}`name` (myst-nb), without showing it.

    In a notebook without myst-nb (e.g. Colab) this does nothing: the prose there is not rendered anyway.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)
