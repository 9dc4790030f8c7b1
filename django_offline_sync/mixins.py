"""View mixins for the table operations: query, read, insert, update, delete, undelete.

Each write runs in one transaction that first takes the table's clock lock (or, with
``STAMPING = "now"``, the row's lock), then reads the row through the view's data view,
checks the precondition and writes: the version check and the write are atomic in the
database, never check-then-write across transactions. Conflicts carry the current entity.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import F, QuerySet
from django.http.request import RawPostDataException
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.response import Response

from . import stamping
from .concurrency import Precondition, etag_for, if_none_match_hits, parse_if_match, parse_version_value
from .exceptions import BadRequest, Conflict, InvalidId, ItemGone, ItemNotFound, PayloadTooLarge
from .models import check_id
from .query.options import evaluation_guard
from .serializers import Body, split_body
from .settings import sync_settings
from .signals import sync_committed


class BodyMixin:
    """Reads a JSON request body with precise 4xx errors (size, media type, syntax)."""

    def read_json(self, request: Any, *, allow_empty: bool = False) -> Any:
        limit = sync_settings.MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise PayloadTooLarge(f"The request body is {length} bytes; the limit is {limit}.")
        content_type = request.content_type.split(";")[0].strip().lower() if request.content_type else ""
        # No Content-Type is taken as JSON, as the v2 Node server does (PROTOCOL.md §1.4).
        if content_type and content_type != "application/json" and not content_type.endswith("+json"):
            raise UnsupportedMediaType(content_type)
        try:
            raw = request.body
        except (RequestDataTooBig, RawPostDataException) as exc:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.") from exc
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is {len(raw)} bytes; the limit is {limit}.")
        if not raw.strip():
            if allow_empty:
                return None
            raise BadRequest("The request body is empty; send a JSON object.")
        try:
            return json.loads(raw)
        except UnicodeDecodeError as exc:
            raise BadRequest("The request body is not valid UTF-8.") from exc
        except json.JSONDecodeError as exc:
            raise BadRequest(f"Malformed JSON in the request body: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc

    def read_body(self, request: Any) -> Body:
        return split_body(self.read_json(request), self.get_representer(), v1=self.adapter.name == "v1")


class WriteMixin(BodyMixin):
    """Locking, preconditions and conflicts shared by every write."""

    def write_db(self) -> str:
        return router.db_for_write(self.get_model())

    def lock_row(self, pk: Any) -> tuple[int, int] | None:
        """Serialize this write with the table's other writers; returns its stamp if reserved.

        In clock mode the stamp is reserved here: that UPDATE of the clock row is the lock,
        so the write's ``save()`` need not move the clock a second time.
        """
        model = self.get_model()
        using = self.write_db()
        if stamping.uses_clock():
            ((ms, version),) = stamping.reserve(model, 1, using)
            return ms, version
        # A no-op UPDATE takes the row lock (and SQLite's write lock) until commit.
        QuerySet(model, using=using).filter(pk=pk).update(deleted=F("deleted"))
        return None

    def get_precondition(self, request: Any, body: Body | None = None) -> tuple[Precondition | None, bool]:
        """The expected version and whether it came from If-Match (which decides 412 vs 409)."""
        precondition = parse_if_match(request.headers.get("If-Match"))
        if precondition is not None:
            return precondition, True
        if body is not None and self.adapter.name == "v2":
            sent = body.system.get("version")
            if isinstance(sent, str) and sent:
                # v2 servers use a version in the body as the concurrency token (§6.2).
                return Precondition(version=parse_version_value(sent, source="The body version")), False
        return None, False

    def conflict(self, obj: Any, if_match_sent: bool, status_code: int | None = None) -> Conflict:
        status_code = status_code or self.adapter.conflict_status(if_match_sent)
        return Conflict(self.entity(obj), etag_for(obj.version), status_code)

    def lookup_pk(self, pk: Any) -> Any:
        """The URL id as the primary key's Python value; an id no row can have is a 404.

        (Before the database sees it: PostgreSQL rejects a NUL byte in text with an error.)
        """
        field = self.get_model()._meta.pk
        try:
            value = field.to_python(pk)
            if isinstance(field, models.CharField):
                check_id(value)
        except (DjangoValidationError, InvalidId, TypeError, ValueError) as exc:
            raise ItemNotFound() from exc
        return value

    def locked_object(self, pk: Any) -> Any:
        """The row ``pk`` in the caller's data view (deleted rows included), or 404."""
        pk = self.lookup_pk(pk)
        stamp = self.lock_row(pk)
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise ItemNotFound()
        self.check_object_permissions(self.request, obj)
        if stamp is not None:
            obj.use_reserved_stamp(*stamp)
        return obj

    def deleted_error(self) -> Exception:
        return ItemGone() if self.adapter.deleted_status == status.HTTP_410_GONE else ItemNotFound()

    def committed(self, instance: Any, operation: str) -> None:
        request = self.request
        transaction.on_commit(
            lambda: sync_committed.send(sender=type(instance), instance=instance, operation=operation, request=request),
            using=self.write_db(),
        )

    def entity_response(self, obj: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
        response = Response(self.entity(obj), status=status_code, headers=headers)
        response["ETag"] = etag_for(obj.version)
        return response


class ListMixin:
    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        query = self.get_odata_query()
        queryset = self.filter_queryset(self.get_queryset())
        representer = self.get_representer()
        take, skip, top = self.get_page_window(query)
        select, converters = representer.select_plan(connections[queryset.db].vendor)
        with evaluation_guard(using=queryset.db):
            page = self.paginator.paginate(
                queryset,
                request,
                columns=representer.attnames,
                select=select,
                take=take,
                skip=skip,
                top=top,
                count=query.count,
                order_by=query.order_by,
                boundary=self.pull_boundary(query),
            )
        items = [representer.from_values(row, converters) for row in page.rows]
        if query.select:
            # v1: system columns named in $select are returned, and those that
            # __systemproperties asked for are kept (PROTOCOL.md §2.4).
            self.adapter.include(set(query.select))
            wanted = set(query.select) | self.adapter.always_selected()
            items = [{k: v for k, v in item.items() if k in wanted} for item in items]
        items = self.adapter.render_many(items)
        payload = self.adapter.list_payload(items, page.count, page.next_link)
        response = Response(payload)
        if page.next_url and self.adapter.name != "v3" and sync_settings.LINK_HEADER:
            # No angle brackets, unquoted rel: the form the .NET client parses (§3.4).
            response["Link"] = f"{page.next_url}; rel=next"
        return response


class RetrieveMixin:
    def retrieve(self, request: Any, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        obj = self.get_queryset().filter(pk=self.lookup_pk(pk)).first()
        if obj is None:
            raise ItemNotFound()
        self.check_object_permissions(request, obj)
        if obj.deleted and not self.include_deleted_requested():
            raise self.deleted_error()
        if if_none_match_hits(request.headers.get("If-None-Match"), obj.version):
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
            response["ETag"] = etag_for(obj.version)
            return response
        return self.entity_response(obj)


class CreateMixin:
    def create(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        body = self.read_body(request)
        sent_id = self.new_id(body.id)
        serializer = self.get_serializer(data=body.columns)
        serializer.is_valid(raise_exception=True)
        if sent_id is not None:
            serializer.context["sync_id"] = sent_id
        try:
            # The primary key decides duplicates: an INSERT of a taken id fails (a concurrent
            # one waits for the first to commit, then fails), and only then do we look.
            with transaction.atomic(using=self.write_db()):
                self.perform_create(serializer)
                instance = serializer.instance
                self.committed(instance, "insert")
        except IntegrityError as exc:
            if sent_id is not None:
                self.raise_if_exists(sent_id)
            raise BadRequest(f"The item violates a database constraint: {exc}") from exc
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{instance.pk}")
        return self.entity_response(instance, status.HTTP_201_CREATED, {"Location": location})

    def perform_create(self, serializer: Any) -> None:
        """Override to stamp server-side values, e.g. ``serializer.save(owner=self.request.user)``."""
        serializer.save()

    def raise_if_exists(self, pk: Any) -> None:
        model = self.get_model()
        if not model.all_objects.filter(pk=pk).exists():
            return
        visible = self.get_queryset().filter(pk=pk).first()
        if visible is None:
            # Never reveal a row outside the caller's data view (the Datasync 409 leak).
            raise BadRequest("An item with this id cannot be created.")
        # Every generation answers a duplicate insert with 409 (PROTOCOL.md §5), v1 included.
        raise self.conflict(visible, if_match_sent=False, status_code=status.HTTP_409_CONFLICT)


class UpdateMixin:
    def update(self, request: Any, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        return self.write(request, pk, replace=True)

    def partial_update(self, request: Any, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        return self.write(request, pk, replace=False)

    def write(self, request: Any, pk: Any, *, replace: bool) -> Response:
        body = self.read_body(request)
        if body.id is not None and str(body.id) != str(pk):
            raise BadRequest(f"The id in the body ({body.id!r}) does not match the id in the URL ({pk!r}).")
        precondition, if_match_sent = self.get_precondition(request, body)
        with transaction.atomic(using=self.write_db()):
            obj = self.locked_object(pk)
            undelete = False
            if obj.deleted:
                if self.adapter.name != "v3" or not replace:
                    raise self.deleted_error()
                sent_deleted = body.system.get("deleted")
                if self.include_deleted_requested():
                    undelete = sent_deleted is False
                elif precondition is None and sent_deleted is not True:
                    # Replace over a tombstone is an undelete (PROTOCOL.md §9(c)): the CTK
                    # client's client-wins turns a conflicting insert into exactly this PUT.
                    undelete = True
                else:
                    raise self.deleted_error()
            if precondition is not None and not precondition.matches(obj.version):
                raise self.conflict(obj, if_match_sent)
            data = dict(body.columns)
            if replace:
                for name, default in self.get_column_defaults().items():
                    data.setdefault(name, default)
            serializer = self.get_serializer(obj, data=data, partial=not replace)
            serializer.is_valid(raise_exception=True)
            if undelete:
                serializer.validated_data["deleted"] = False
            self.perform_update(serializer)
            self.committed(serializer.instance, "undelete" if undelete else "update")
        return self.entity_response(serializer.instance)


    def perform_update(self, serializer: Any) -> None:
        serializer.save()


class DestroyMixin:
    def destroy(self, request: Any, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        precondition, if_match_sent = self.get_precondition(request)
        with transaction.atomic(using=self.write_db()):
            obj = self.locked_object(pk)
            if obj.deleted:
                raise self.deleted_error()
            if precondition is not None and not precondition.matches(obj.version):
                raise self.conflict(obj, if_match_sent)
            self.perform_destroy(obj)
            self.committed(obj, "delete")
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_destroy(self, instance: Any) -> None:
        if self.get_soft_delete():
            instance.delete()
        else:
            instance.hard_delete()


class UndeleteMixin:
    def undelete(self, request: Any, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        if self.read_json(request, allow_empty=True) is not None:
            raise BadRequest("An undelete request must not have a body.")
        precondition, if_match_sent = self.get_precondition(request)
        with transaction.atomic(using=self.write_db()):
            obj = self.locked_object(pk)
            if precondition is not None and not precondition.matches(obj.version):
                raise self.conflict(obj, if_match_sent)
            if obj.deleted:
                self.perform_undelete(obj)
                self.committed(obj, "undelete")
        return self.entity_response(obj, self.adapter.undelete_status)

    def perform_undelete(self, instance: Any) -> None:
        instance.undelete()
