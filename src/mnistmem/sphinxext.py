"""A small Sphinx extension for the book: pages whose browser console stays clean.

sphinx-thebe 0.3.1 registers its inline configuration script on every `env-before-read-docs` event, which
fires more than once in a Jupyter Book build, so pages declared `const THEBE_JS_URL` twice and the browser
reported a SyntaxError. Removing exact duplicate scripts from each page fixes that and any twin like it.

Two more jobs: a page without a plotly figure does not load plotly.js (4.8 MB; the search page must stay
under 3 MB), and when the search page is in the book, the data it fetches on first use (`mnistmem.book.search_page`)
is written into the built HTML's `_static/search` — generated from the installed MNIST data and the committed
results at every build, never committed.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (
            str(getattr(script, "filename", script) or ""),  # inline scripts have filename None or ""
            tuple(sorted((k, str(v)) for k, v in attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _drop_unused_plotly(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts or "plotly-graph-div" in context.get("body", ""):
        return
    context["script_files"] = [s for s in scripts if not str(getattr(s, "filename", s) or "").endswith("plotly.min.js")]


def _write_search_data(app, exception) -> None:
    from pathlib import Path

    from mnistmem.book import search_page

    if exception is not None or app.builder.format != "html" or search_page.DOCNAME not in app.env.all_docs:
        return
    from mnistmem import results

    search_page.write_static(Path(app.outdir) / search_page.STATIC_SUBDIR, results.load("main"))


def setup(app):
    app.connect(
        "html-page-context", _dedupe_scripts, priority=100
    )  # early: emit_firstresult stops at the first handler returning a value
    app.connect("html-page-context", _drop_unused_plotly, priority=110)
    app.connect("build-finished", _write_search_data)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
