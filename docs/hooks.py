"""MkDocs hook: the Sphinx roles of the docstrings (``:class:`~sofie_rdf.model.Model```, ``:func:``, ...) shown
as code in the API reference, as Sphinx would show them; mkdocstrings leaves their ``:class:`` prefix as text."""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]+)</code>")


def _name(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_name, html)
