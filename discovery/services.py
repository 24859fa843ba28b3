"""Writes to provider sources: every save goes through here so its beat schedule follows it.

The admin's ``save_model``/``delete_model``, ``register_sources`` and any API call these
functions; a source saved any other way would leave its schedule behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from discovery.clients import fetch_listing
from discovery.clients.base import ProviderError
from discovery.clients.http import answer_within
from discovery.locks import registration_lock
from discovery.models import DiscoveryRun, ProviderSource, RunStatus, SourceKind
from discovery.schedules import schedule_remove, schedule_upsert
from registry.models import ModelRuntime

logger = logging.getLogger(__name__)

# Names of the sources that the environment registers.
ENV_OLLAMA = "ollama"
ENV_OPENAI = "openai"
ENV_ANTHROPIC = "anthropic"


class SourceNameConflict(Exception):
    """Another source already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A source named {name!r} already exists.")
        self.name = name


def source_save(*, source: ProviderSource) -> ProviderSource:
    """Save ``source`` (validated) and upsert its beat schedules (removed when disabled).

    A source that is no longer an Ollama host loses its runtime rows: no poll will ever update them.

    A name another source has raises ``SourceNameConflict`` (a conflict with what is stored, not
    invalid input), also when a concurrent save took it between the check and the insert.
    """
    source.full_clean(validate_unique=False)
    others = ProviderSource.objects.filter(name=source.name).exclude(pk=source.pk)
    if others.exists():
        raise SourceNameConflict(source.name)
    try:
        with transaction.atomic():
            source.save()
            schedule_upsert(source=source)
            if source.kind != SourceKind.OLLAMA:
                # Deleted with signals (few rows), which invalidate the cached model reads that showed them.
                ModelRuntime.objects.filter(source=source).delete()
    except IntegrityError as exc:
        if others.exists():
            raise SourceNameConflict(source.name) from exc
        raise
    return source


@transaction.atomic
def source_delete(*, source: ProviderSource) -> None:
    """Delete ``source`` and its schedule. Its models stay; their endpoints lose the source link."""
    schedule_remove(source=source)
    source.delete()


def run_record_not_queued(*, source: ProviderSource, trigger: str, reason: str) -> DiscoveryRun:
    """A run that never started because the broker refused it: operators see the request and why it failed."""
    return DiscoveryRun.objects.create(
        source=source,
        trigger=trigger[:20],
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error_message=f"Not queued: the broker is unavailable ({reason}).",
    )


@dataclass(frozen=True)
class EnvironmentSource:
    name: str
    kind: str
    base_url: str
    api_key: str | None


def environment_sources() -> list[EnvironmentSource]:
    """The sources the environment names. A cloud source without a key is not one."""
    found = []
    if settings.OLLAMA_URL:
        found.append(EnvironmentSource(ENV_OLLAMA, SourceKind.OLLAMA, settings.OLLAMA_URL, None))
    if settings.OPENAI_API_KEY:
        base = settings.OPENAI_BASE_URL or "https://api.openai.com/v1"
        found.append(EnvironmentSource(ENV_OPENAI, SourceKind.OPENAI, base, settings.OPENAI_API_KEY))
    if settings.ANTHROPIC_API_KEY:
        base = settings.ANTHROPIC_BASE_URL or "https://api.anthropic.com"
        found.append(EnvironmentSource(ENV_ANTHROPIC, SourceKind.ANTHROPIC, base, settings.ANTHROPIC_API_KEY))
    return found


@dataclass(frozen=True)
class RegisteredSource:
    source: ProviderSource
    created: bool
    changed: bool


@transaction.atomic
def sources_register_from_environment() -> list[RegisteredSource]:
    """Create or update the sources named by the environment, with their schedules.

    The environment owns a source's URL and key; the operator owns its interval and whether it
    is enabled, so a restart never resets those. A source of the same name that an operator
    created by hand is left alone (with a warning): the environment does not take it over.
    Processes starting together take turns (an advisory lock on PostgreSQL), so none fails on the
    unique name another has just created.
    """
    registration_lock()
    results = []
    for wanted in environment_sources():
        source = ProviderSource.objects.filter(name=wanted.name).first()
        if source is None:
            source = ProviderSource(
                name=wanted.name,
                kind=wanted.kind,
                base_url=wanted.base_url,
                api_key=wanted.api_key,
                from_environment=True,
            )
            results.append(RegisteredSource(source_save(source=source), created=True, changed=True))
            continue
        if not source.from_environment:
            logger.warning(
                "source %s exists and was not registered from the environment; leaving it as the operator set it",
                source.name,
            )
            results.append(RegisteredSource(source, created=False, changed=False))
            continue
        changed = source.kind != wanted.kind or source.base_url != wanted.base_url or source.api_key != wanted.api_key
        if changed:
            source.kind, source.base_url, source.api_key = wanted.kind, wanted.base_url, wanted.api_key
            source_save(source=source)
        else:
            # Unchanged: only make sure its schedule exists (created before this code, or removed by hand).
            schedule_upsert(source=source)
        results.append(RegisteredSource(source, created=False, changed=changed))
    return results


@dataclass(frozen=True)
class ConnectionCheck:
    """What asking a source for its listing told: reached or not, and what an operator should read."""

    ok: bool
    message: str


def source_test_connection(*, source: ProviderSource) -> ConnectionCheck:
    """Ask ``source`` for its listing now, writing nothing; the message never holds the key.

    A person waits on the answer in a web worker: one attempt, all of it within
    SOURCE_TEST_TIMEOUT_SECONDS (a discovery run retries; a test says what it found at once).
    """
    try:
        with answer_within(float(settings.SOURCE_TEST_TIMEOUT_SECONDS)):
            listing = fetch_listing(source)
    except ProviderError as exc:
        return ConnectionCheck(ok=False, message=f"{source.name}: {exc}")
    return ConnectionCheck(ok=True, message=f"{source.name}: reached, {len(listing.models)} model(s) listed.")
