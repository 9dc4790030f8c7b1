"""The example site's URLs and two floor endpoints, for ``bench/cpu.py``'s floor cases.

``/bench/django-empty``: a plain Django view answering ``[]``, through the site's middleware
and URL resolver: what any request to this Django site costs before a view does anything.
``/bench/drf-empty``: a DRF ``APIView`` answering ``[]`` with the table endpoints' own
authentication, permission, throttle, parser, renderer and content-negotiation classes
(``TaskViewSet``'s; its per-operation permissions and generation detection are the
library's work, not DRF's): what DRF's dispatch adds. A pull page's cost above ``drf-empty`` is the library's and the
database's. The table URLs come first, so resolving them costs what it does on the site.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from example_project.tasks.views import TaskViewSet
from example_project.urls import urlpatterns as site_urlpatterns


def django_empty(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"[]", content_type="application/json")


class DrfEmpty(APIView):
    authentication_classes = TaskViewSet.authentication_classes
    permission_classes = TaskViewSet.permission_classes
    throttle_classes = TaskViewSet.throttle_classes
    parser_classes = TaskViewSet.parser_classes
    renderer_classes = TaskViewSet.renderer_classes
    content_negotiation_class = TaskViewSet.content_negotiation_class

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response([])


urlpatterns = [
    *site_urlpatterns,
    path("bench/django-empty", django_empty),
    path("bench/drf-empty", DrfEmpty.as_view()),
]
