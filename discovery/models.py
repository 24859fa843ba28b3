"""Where models are discovered from, and the record of every discovery run."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from encrypted_fields.fields import EncryptedTextField


class SourceKind(models.TextChoices):
    OLLAMA = "ollama", "Ollama"
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible (vLLM, LM Studio, llama.cpp, LocalAI)"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (another run held the lock)"


def _default_interval() -> int:
    return int(settings.DISCOVERY_DEFAULT_INTERVAL_SECONDS)


def validate_base_url(value: str) -> None:
    """An http(s) URL with a host. Not Django's URLValidator: it rejects hosts without a dot,
    and provider hosts are often bare service names (``http://ollama:11434``)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL with a host, e.g. http://ollama:11434.", code="invalid")


RUNTIME_POLL_MIN_SECONDS = 5


def validate_runtime_poll_seconds(value: int) -> None:
    """0 (off) or at least ``RUNTIME_POLL_MIN_SECONDS``: a host asked every second is a load, not a poll."""
    if 0 < value < RUNTIME_POLL_MIN_SECONDS:
        raise ValidationError(f"0 (off) or at least {RUNTIME_POLL_MIN_SECONDS} seconds.", code="min_value")


class ProviderSource(models.Model):
    """One provider endpoint to discover models from (an Ollama host, the OpenAI API, a vLLM server)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=30, choices=SourceKind.choices)
    base_url = models.CharField(max_length=255, validators=[validate_base_url])
    api_key = EncryptedTextField(null=True, blank=True, help_text="Encrypted at rest; never shown or returned.")
    enabled = models.BooleanField(default=True)
    interval_seconds = models.PositiveIntegerField(
        default=_default_interval,
        validators=[MinValueValidator(10)],
        help_text="How often discovery runs for this source, in seconds (at least 10).",
    )
    runtime_poll_seconds = models.PositiveIntegerField(
        default=30,
        validators=[validate_runtime_poll_seconds],
        help_text="Ollama only: how often to ask the host which models are loaded (GET /api/ps), "
        "in seconds (at least 5); 0 turns the poll off (discovery runs still ask).",
    )
    from_environment = models.BooleanField(
        default=False, help_text="Registered from the environment (OLLAMA_URL, OPENAI_API_KEY, ...)."
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, choices=RunStatus.choices, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "provider_sources"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(interval_seconds__gte=10), name="provider_sources_interval_min_10s"),
            models.CheckConstraint(condition=~Q(name=""), name="provider_sources_name_not_empty"),
            models.CheckConstraint(
                condition=Q(runtime_poll_seconds=0) | Q(runtime_poll_seconds__gte=RUNTIME_POLL_MIN_SECONDS),
                name="provider_sources_runtime_poll_off_or_min_5s",
            ),
        ]

    def __str__(self) -> str:
        return self.name


# How many names each list of DiscoveryRun.changes keeps: a first run of a large catalogue would
# otherwise store (and the admin render) tens of thousands of names in one row.
CHANGES_NAMES_MAX = 500
CHANGE_KINDS = ("added", "updated", "unavailable", "skipped")


class DiscoveryRun(models.Model):
    """One discovery run of one source: when, how it ended, and what it changed."""

    source = models.ForeignKey(ProviderSource, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=20, default="schedule", help_text="schedule, manual, startup or command.")
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    models_seen = models.PositiveIntegerField(default=0)
    models_added = models.PositiveIntegerField(default=0)
    models_updated = models.PositiveIntegerField(default=0)
    models_unavailable = models.PositiveIntegerField(default=0)
    models_skipped = models.PositiveIntegerField(default=0)
    # The names behind the counts, so an operator sees which models a run touched without digging
    # through the audit log. Capped (CHANGES_NAMES_MAX per list): the counts above stay the totals.
    changes = models.JSONField(
        default=dict,
        blank=True,
        help_text='Names of the models added, updated, made unavailable and skipped: {"added": [...], ...}.',
    )
    error_message = models.TextField(blank=True, default="")
    # What went wrong without failing the run (GET /api/ps of an Ollama host, say): the registry was updated.
    warnings = models.JSONField(default=list, blank=True, help_text="Problems that did not fail the run.")

    class Meta:
        db_table = "discovery_runs"
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["source", "started_at"], name="discovery_runs_source_started")]

    def __str__(self) -> str:
        return f"{self.source} @ {self.started_at:%Y-%m-%d %H:%M:%S} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class CatalogName(models.TextChoices):
    PRICES = "genai-prices", "genai-prices (prices)"
    MODELS = "models.dev", "models.dev (limits and capabilities)"


class CatalogRefreshStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted (in use)"
    REJECTED = "rejected", "Rejected (the snapshot in use stays)"


class CatalogSnapshot(models.Model):
    """One refresh of a catalog (discovery/catalogs.py): the data fetched, and whether it is in use.

    The newest accepted row of a catalog is what discovery matches against; with none, the
    snapshot bundled with the installed package is. A table rather than a file so that every
    instance and worker uses the same data.
    """

    catalog = models.CharField(max_length=20, choices=CatalogName.choices)
    status = models.CharField(max_length=10, choices=CatalogRefreshStatus.choices)
    version = models.CharField(max_length=80, help_text="The catalog's version: fetched date and content hash.")
    url = models.CharField(max_length=500)
    fetched_at = models.DateTimeField()
    data = models.JSONField(null=True, blank=True, help_text="The validated catalog; empty for a rejected refresh.")
    entries = models.PositiveIntegerField(default=0, help_text="Models the catalog describes.")
    models_affected = models.JSONField(
        default=list, blank=True, help_text="Registered models whose catalog facts this snapshot changes."
    )
    problems = models.JSONField(default=list, blank=True, help_text="Why a refresh was rejected, or what it warned.")

    class Meta:
        db_table = "catalog_snapshots"
        ordering = ["-fetched_at", "-id"]
        indexes = [models.Index(fields=["catalog", "status", "fetched_at"], name="catalog_snapshots_in_use")]

    def __str__(self) -> str:
        return f"{self.catalog} {self.version} ({self.status})"
