"""Sphinx directives that render reference tables from the code, so they cannot drift from it.

``.. offline-sync-settings::``
    every ``OFFLINE_SYNC`` key: the fields of ``django_offline_sync.settings.SyncSettings``, their
    defaults and the ``#:`` comment above each field.
``.. offline-sync-checks::``
    every system check id the app reports, from ``django_offline_sync.checks.CATALOG`` (a test
    keeps that catalog and the ids used in the code equal).

And links between the reStructuredText files (```client.rst <client.rst>`_``, as GitHub and
an unpacked sdist show them) are pointed at the built pages, so the files read well both as
source and as HTML. A link to a ``.rst`` file that is not a page of this build is an error.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return f"``{value!r}``".replace("'", '"')


class _Table(SphinxDirective):
    has_content = False

    def rows(self) -> list[tuple[str, str, str]]:
        raise NotImplementedError

    headers: tuple[str, str, str] = ("", "", "")
    widths: tuple[int, int, int] = (25, 20, 55)

    def run(self) -> list[nodes.Node]:
        lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {' '.join(map(str, self.widths))}", ""]
        for row in [self.headers, *self.rows()]:
            for i, cell in enumerate(row):
                cell_lines = cell.splitlines() or [""]
                lines.append(("   * - " if i == 0 else "     - ") + cell_lines[0])
                lines.extend("       " + extra for extra in cell_lines[1:])
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="<offline-sync reference>"), self.content_offset, container)
        return list(container.children)


class SettingsDirective(_Table):
    headers = ("key", "default", "meaning")
    widths = (24, 18, 58)

    def rows(self) -> list[tuple[str, str, str]]:
        from django_offline_sync import settings as module

        self.env.note_dependency(module.__file__)
        docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
        rows = []
        for field in dataclasses.fields(module.SyncSettings):
            comment = docs.get(("SyncSettings", field.name))
            if not comment or not "".join(comment).strip():
                raise self.error(f"SyncSettings.{field.name} has no #: comment to document it")
            rows.append((f"``{field.name}``", _literal(field.default), "\n".join(comment).strip()))
        return rows


class ChecksDirective(_Table):
    headers = ("id", "what is wrong", "fix")
    widths = (20, 45, 35)

    def rows(self) -> list[tuple[str, str, str]]:
        from django_offline_sync import checks as module

        self.env.note_dependency(module.__file__)
        return [(f"``{c.id}`` ({'error' if c.error else 'warning'})", c.problem, c.fix) for c in module.CATALOG]


_RST_LINK = re.compile(r"^(?:\.\./|docs/)?(?P<name>[\w.-]+)\.rst(?P<anchor>#.*)?$")
#: Files outside docs/ that the documentation includes as a page of its own.
_OUTSIDE = {"CHANGES": "changes", "README": "index"}


def _point_rst_links_at_pages(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for ref in doctree.findall(nodes.reference):
        match = _RST_LINK.match(ref.get("refuri", ""))
        if match is None:
            continue
        target = _OUTSIDE.get(match["name"], match["name"])
        if target not in app.env.found_docs:
            location = f"{app.env.doc2path(docname)}:{ref.line or 0}"
            raise ValueError(f"{location}: a link to {ref['refuri']!r}, which is not a page of the documentation")
        ref["refuri"] = app.builder.get_relative_uri(docname, target) + (match["anchor"] or "")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", _point_rst_links_at_pages)
    app.add_directive("offline-sync-settings", SettingsDirective)
    app.add_directive("offline-sync-checks", ChecksDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
