"""``SyncRouter``: DRF's ``SimpleRouter`` with the table protocol's routes.

Adds ``POST /{table}/{id}`` (undelete), makes the trailing slash optional and lets ids
contain any character but ``/`` (DRF's default also refuses ``.``, which ids may hold).
"""

from __future__ import annotations

from rest_framework.routers import Route, SimpleRouter


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

    def __init__(self) -> None:
        super().__init__(trailing_slash=False)
        self.trailing_slash = "/?"
