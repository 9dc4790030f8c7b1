"""A minimal list endpoint over ``Item`` for the fuzz test: parse_query, then run the query."""

from django.urls import path
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from django_offline_sync.exceptions import ODataError
from django_offline_sync.generations import policy_for
from django_offline_sync.query import FieldMap, evaluation_guard, parse_query
from tests.models import Item


class ItemQueryView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request, generation):
        query = parse_query(request.query_params, FieldMap.for_model(Item))
        queryset = Item.all_objects.all() if query.include_deleted else Item.objects.all()
        if query.filter is not None:
            queryset = queryset.filter(query.filter)
        take = policy_for(generation).page_size(query.top)
        with evaluation_guard():
            ids = list(queryset.order_by(*query.order_by).values_list("id", flat=True)[query.skip:query.skip + take])
            body = {"items": ids, "count": queryset.count() if query.count else None}
        return Response(body)

    def handle_exception(self, exc):
        if isinstance(exc, ODataError):
            return Response({"detail": str(exc.detail), **exc.as_dict()}, status=exc.status_code)
        if isinstance(exc, APIException):
            return super().handle_exception(exc)
        raise exc


urlpatterns = [path("query/<str:generation>/", ItemQueryView.as_view())]
