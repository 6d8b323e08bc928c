"""Built-in report exporters: JSON (the versioned schema), Markdown, and a self-contained HTML page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evlf.core.exporter import Exporter
from evlf.core.hookspecs import hookimpl
from evlf.plugins.exporters.html import render_html
from evlf.plugins.exporters.markdown import render_markdown
from evlf.plugins.exporters.text import render_json


@hookimpl
def register_exporters(register: Callable[[Any], None]) -> None:
    register(Exporter(name="json", suffix=".json", media_type="application/json", render=render_json))
    register(Exporter(name="markdown", suffix=".md", media_type="text/markdown", render=render_markdown))
    register(Exporter(name="html", suffix=".html", media_type="text/html", render=render_html, needs_images=True))
