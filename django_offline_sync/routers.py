"""``SyncRouter``: DRF's ``SimpleRouter`` with the table protocol's routes.

Adds ``POST /{table}/{id}`` (undelete), makes the trailing slash optional and lets ids
contain any character but ``/`` (DRF's default also refuses ``.``, which ids may hold).

Table names match in any case (``/tables/task`` serves ``Task``): the Datasync TypeScript and
.NET clients lower-case them, and the v1 runtime ignored case (``docs/protocol.rst`` §1.1).
The registered name stays canonical: a request in another case is served as if it had used
the registered spelling, so ``Location``, ``Link``, ``nextLink`` and the paging cursor name the
table as registered, and ``reverse()`` gives the registered spelling.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RegexPattern
from django.utils.functional import cached_property
from rest_framework.routers import Route, SimpleRouter
from rest_framework.viewsets import ViewSetMixin

__all__ = ["SyncRouter"]

#: A registered prefix that is plain text (no regex syntax), which a request path can spell.
_LITERAL: re.Pattern[str] = re.compile(r"[\w\-~/]+")


class _TablePattern(RegexPattern):
    """A router URL matched without regard to case.

    Only matching changes: the regex text (used by ``reverse()``, checks and schema
    generators) is the router's own, case and all.
    """

    @cached_property
    def _any_case(self) -> re.Pattern[str]:
        return re.compile(str(self), re.IGNORECASE)

    def match(self, path: str) -> tuple[str, tuple[Any, ...], dict[str, str]] | None:
        regex = self._any_case
        match = regex.fullmatch(path) if regex.pattern.endswith("$") else regex.search(path)
        if match is None:
            return None
        kwargs = {k: v for k, v in match.groupdict().items() if v is not None}
        args = () if match.groupdict() else match.groups()
        return path[match.end() :], args, kwargs


def _canonical(view: Callable[..., HttpResponseBase], prefix: str, detail: bool) -> Callable[..., HttpResponseBase]:
    """``view``, served with the request's path spelling the table as registered (``prefix``)."""
    if not _LITERAL.fullmatch(prefix):
        return view  # a regex prefix: no single spelling to restore
    segments = prefix.count("/") + 1

    @functools.wraps(view)
    def serve(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        path_info = request.path_info
        body, slash = (path_info[:-1], "/") if path_info.endswith("/") else (path_info, "")
        parts = body.split("/")
        start = len(parts) - segments - (1 if detail else 0)
        sent = "/".join(parts[start : start + segments])
        if start > 0 and sent != prefix and sent.lower() == prefix.lower():
            fixed = "/".join([*parts[:start], prefix, *parts[start + segments :]]) + slash
            if request.path.endswith(path_info):
                request.path = request.path[: len(request.path) - len(path_info)] + fixed
            request.path_info = fixed
        return view(request, *args, **kwargs)

    return serve


class SyncRouter(SimpleRouter):
    routes = [
        Route(
            url=r"^{prefix}{trailing_slash}$",
            mapping={"get": "list", "post": "create"},
            name="{basename}-list",
            detail=False,
            initkwargs={"suffix": "List"},
        ),
        Route(
            url=r"^{prefix}/{lookup}{trailing_slash}$",
            mapping={
                "get": "retrieve",
                "put": "update",
                "patch": "partial_update",
                "delete": "destroy",
                "post": "undelete",
            },
            name="{basename}-detail",
            detail=True,
            initkwargs={"suffix": "Instance"},
        ),
    ]

    def __init__(self, *, batch: bool = True, events: bool = True) -> None:
        """``batch=False`` leaves out ``/$batch`` (``docs/batch.rst``): clients then push one
        request per operation. ``events=False`` leaves out ``/$events`` (``docs/events.rst``)."""
        super().__init__(trailing_slash=False)
        self.trailing_slash = "/?"
        self.batch = batch
        self.events = events

    def register(self, prefix: str, viewset: type[ViewSetMixin], basename: str | None = None) -> None:
        """DRF's ``register``; two tables whose names differ only in case are refused, since
        names match in any case."""
        for registered, _, _ in self.registry:
            if registered.lower() == prefix.lower():
                raise ImproperlyConfigured(
                    f"SyncRouter: table {prefix!r} clashes with {registered!r}; table names match in any case."
                )
        super().register(prefix, viewset, basename)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        """DRF's URLs, each matched in any case and served under the registered spelling,
        after ``$batch`` (``docs/batch.rst``) and ``$events`` (``docs/events.rst``), which serve
        the registered tables."""
        from .batch import BATCH_PATH, BatchView, _Table
        from .events import EVENTS_PATH, events_view

        prefixes = {basename: prefix for prefix, _, basename in self.registry}
        urls: list[URLPattern | URLResolver] = []
        tables = {prefix.lower(): _Table(prefix, viewset, basename) for prefix, viewset, basename in self.registry}
        if tables and self.batch:
            pattern = _TablePattern(rf"^\{BATCH_PATH}/?$", name="offline-sync-batch", is_endpoint=True)
            urls.append(URLPattern(pattern, BatchView.as_view(tables=tables), name="offline-sync-batch"))
        if tables and self.events:
            pattern = _TablePattern(rf"^\{EVENTS_PATH}/?$", name="offline-sync-events", is_endpoint=True)
            urls.append(URLPattern(pattern, events_view(tables), name="offline-sync-events"))
        for url in super().get_urls():
            initkwargs = getattr(url.callback, "initkwargs", None) if isinstance(url, URLPattern) else None
            if not isinstance(url, URLPattern) or not isinstance(initkwargs, dict) or url.callback is None:
                urls.append(url)
                continue
            prefix, detail = prefixes[initkwargs["basename"]], bool(initkwargs["detail"])
            pattern = _TablePattern(str(url.pattern), name=url.name, is_endpoint=True)
            urls.append(URLPattern(pattern, _canonical(url.callback, prefix, detail), url.default_args, url.name))
        return urls
