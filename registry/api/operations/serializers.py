"""Representations of the operational endpoints: the audit log and its filters."""

from __future__ import annotations

from typing import Any

from auditlog.models import LogEntry
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS

from registry.api.fields import QuerySerializer, QueryTextField
from registry.models import TrustedNetworkRead
from registry.operations.selectors import ACTIONS, AUDITED_OBJECTS

ACTION_NAMES = {value: name for name, value in ACTIONS.items()}


class AuditQuerySerializer(QuerySerializer):
    """Filters of ``GET /audit``; an unknown value is a 400 naming the parameter."""

    object_type = serializers.ChoiceField(choices=sorted(AUDITED_OBJECTS), required=False)
    object_id = QueryTextField(required=False, max_length=255)
    actor = QueryTextField(required=False, max_length=255)
    action = serializers.ChoiceField(choices=sorted(ACTIONS), required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class AuditEntrySerializer(serializers.Serializer):
    """One change: what, to which object, by whom (a local user or a named actor), when."""

    id = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    action = serializers.SerializerMethodField()
    object_type = serializers.SerializerMethodField()
    object_id = serializers.CharField(source="object_pk")
    object_repr = serializers.CharField()
    actor = serializers.SerializerMethodField()
    actor_details = serializers.JSONField(source="additional_data", allow_null=True)
    changes = serializers.JSONField(allow_null=True)
    remote_addr = serializers.IPAddressField(allow_null=True)

    def get_action(self, entry: LogEntry) -> str:
        return ACTION_NAMES.get(entry.action, "access")

    def get_object_type(self, entry: LogEntry) -> str | None:
        return self.context["object_types"].get(entry.content_type_id)

    def get_actor(self, entry: LogEntry) -> str | None:
        if entry.actor is not None:
            return entry.actor.get_username()
        return entry.actor_email or None


class TrustedReadsQuerySerializer(QuerySerializer):
    """Filters of ``GET /audit/reads``; a bad value is a 400 naming the parameter."""

    client = serializers.IPAddressField(required=False, help_text="A client address: 172.28.1.5.")
    route = QueryTextField(required=False, max_length=255, help_text="A route as recorded: /api/v1/models/{ref}.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class TrustedReadSerializer(serializers.ModelSerializer):
    """The requests (reads, usage posts) one client address made of one route in one minute, without a token."""

    actor = serializers.SerializerMethodField(help_text="The actor its requests are attributed to.")
    summary = serializers.SerializerMethodField(help_text="172.28.1.5 read GET /api/v1/models 57 times in 12:04 UTC.")

    class Meta:
        model = TrustedNetworkRead
        fields = ["minute", "client_address", "network", "method", "route", "count", "actor", "summary"]

    def get_actor(self, row: TrustedNetworkRead) -> str:
        return f"platform:network:{row.client_address}"

    def get_summary(self, row: TrustedNetworkRead) -> str:
        return read_summary(row)


def read_summary(row: TrustedNetworkRead) -> str:
    """How an operator reads a row: ``172.28.1.5 read GET /api/v1/models 57 times in 12:04 UTC``
    (``... sent POST /api/v1/models/{ref}/usage ...`` for a usage post)."""
    verb = "read" if row.method in SAFE_METHODS else "sent"
    times = "once" if row.count == 1 else f"{row.count:,} times"
    return f"{row.client_address} {verb} {row.method} {row.route} {times} in {row.minute:%Y-%m-%d %H:%M} UTC"
