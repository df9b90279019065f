"""A small Sphinx extension for the book: pages whose browser console stays clean.

sphinx-thebe 0.3.1 registers its inline configuration script on every `env-before-read-docs` event, which
fires more than once in a Jupyter Book build, so pages declared `const THEBE_JS_URL` twice and the browser
reported a SyntaxError. Removing exact duplicate scripts from each page fixes that and any twin like it.
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


def setup(app):
    app.connect(
        "html-page-context", _dedupe_scripts, priority=100
    )  # early: emit_firstresult stops at the first handler returning a value
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
