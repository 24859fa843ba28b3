"""The six tables of the design document, plus the operational columns it implies.

Table and column names follow the design (``models``, ``model_endpoints``, ...). Added to them:
a model's deployment ``status``, when discovery first and last saw it and from which provider
source, and for capabilities and parameters whether an operator or discovery set them (discovery
never touches what an operator set).

Deleting a model deletes its endpoints, capabilities and parameters. Its usage and performance
history is kept: the foreign key is set to NULL and each record carries the model's name as it was
when recorded (``model_name``), so totals and audits stay attributable after the model is gone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from encrypted_fields.fields import EncryptedJSONField, EncryptedTextField

from registry.partitions import usage_partitions_ensure


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    OLLAMA = "ollama", "Ollama"
    CUSTOM = "custom", "Custom / OpenAI-compatible"


class ModelType(models.TextChoices):
    COMPLETION = "completion", "Completion"
    CHAT = "chat", "Chat"
    EMBEDDING = "embedding", "Embedding"
    VISION = "vision", "Vision"


class ModelStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    UNAVAILABLE = "unavailable", "Unavailable"
    DEPRECATED = "deprecated", "Deprecated"


class EndpointType(models.TextChoices):
    REST = "rest", "REST"
    GRPC = "grpc", "gRPC"
    LOCAL = "local", "Local"


class AuthType(models.TextChoices):
    API_KEY = "api_key", "API key"
    OAUTH = "oauth", "OAuth"
    NONE = "none", "None"


class SetBy(models.TextChoices):
    """Who owns a capability or parameter row: discovery only ever changes its own rows."""

    OPERATOR = "operator", "Operator"
    DISCOVERY = "discovery", "Discovery"


class EvidenceSource(models.TextChoices):
    """What a capability score rests on (the ``source`` of its evidence)."""

    OPERATOR = "operator", "Operator"
    PROVIDER = "provider", "Provider's declaration"
    CATALOG = "catalog", "Catalog (genai-prices, models.dev)"
    MEASURED = "measured", "Measured from performance records"


# The fields of a model that discovery describes (for the source that first listed it). An operator's
# change to one of them is recorded in ``operator_fields``, and discovery leaves it as the operator set it.
DISCOVERY_DESCRIBED_FIELDS = (
    "display_name",
    "provider",
    "model_type",
    "version",
    "context_window",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cache_read_cost_per_mtok",
    "cache_write_cost_per_mtok",
    "details",
)
# ``status`` joins them when an operator sets a model unavailable or deprecated by hand.
OPERATOR_OWNABLE_FIELDS = (*DISCOVERY_DESCRIBED_FIELDS, "status")

# The key of ``RegisteredModel.details`` that holds the operator's platform-profile overrides
# (``{"task_types": [...], "content_types": [...]}``, docs/platform.md): discovery keeps it when it
# rewrites the provider's facts around it.
PLATFORM_DETAILS_KEY = "platform"


class RegisteredModelQuerySet(models.QuerySet["RegisteredModel"]):
    def available(self) -> RegisteredModelQuerySet:
        return self.filter(status=ModelStatus.AVAILABLE)

    def with_capability(self, capability: str, *, min_score: float = 0.0) -> RegisteredModelQuerySet:
        return self.filter(
            capabilities__capability=capability,
            capabilities__capability_score__gte=min_score,
        )

    def with_related(self) -> RegisteredModelQuerySet:
        """Everything a model's representation shows, in a fixed number of queries."""
        return self.select_related("source").prefetch_related("capabilities", "parameters", "endpoints", "runtimes")


class RegisteredModel(models.Model):
    """A model the platform can call: an LLM, an embedding model, a vision model."""

    name = models.CharField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200)
    provider = models.CharField(max_length=50, choices=Provider.choices, db_index=True)
    model_type = models.CharField(max_length=50, choices=ModelType.choices, db_index=True)
    version = models.CharField(max_length=50, null=True, blank=True)
    description = models.TextField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=ModelStatus.choices, default=ModelStatus.AVAILABLE, db_index=True)
    source = models.ForeignKey(
        "discovery.ProviderSource",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="models",
        help_text="The provider source that first discovered this model; empty for models registered by hand.",
    )
    first_seen_at = models.DateTimeField(null=True, blank=True, help_text="When discovery first listed the model.")
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="When discovery last listed the model.")
    context_window = models.PositiveIntegerField(null=True, blank=True, help_text="Maximum context, in tokens.")
    input_cost_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Price per million input tokens, USD."
    )
    output_cost_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Price per million output tokens, USD."
    )
    cache_read_cost_per_mtok = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Price per million input tokens read from the provider's prompt cache, USD.",
    )
    cache_write_cost_per_mtok = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Price per million input tokens written to the provider's prompt cache, USD.",
    )
    details = models.JSONField(
        default=dict, blank=True, help_text="Facts the provider reported (family, size, quantization, owner)."
    )
    operator_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="Fields an operator set by hand; discovery leaves them as they are.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # auto_now is skipped by bulk_update(): bulk writers (discovery) set it explicitly.
    updated_at = models.DateTimeField(auto_now=True)

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        db_table = "models"
        ordering = ["name"]
        verbose_name = "model"
        verbose_name_plural = "models"
        constraints = [
            models.CheckConstraint(
                condition=Q(context_window__isnull=True) | Q(context_window__gt=0),
                name="models_context_window_positive",
            ),
            models.CheckConstraint(
                condition=Q(input_cost_per_mtok__isnull=True) | Q(input_cost_per_mtok__gte=0),
                name="models_input_cost_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(output_cost_per_mtok__isnull=True) | Q(output_cost_per_mtok__gte=0),
                name="models_output_cost_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cache_read_cost_per_mtok__isnull=True) | Q(cache_read_cost_per_mtok__gte=0),
                name="models_cache_read_cost_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cache_write_cost_per_mtok__isnull=True) | Q(cache_write_cost_per_mtok__gte=0),
                name="models_cache_write_cost_not_negative",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="models_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def available(self) -> bool:
        return self.status == ModelStatus.AVAILABLE


def _model_label(row: ModelEndpoint | ModelCapability | ModelParameter | ModelPrice | ModelRuntime) -> str:
    """The name of ``row``'s model when it is loaded, its id otherwise: ``str()`` never costs a query."""
    if type(row).model.is_cached(row):
        return row.model.name
    return f"model {row.model_id}"


class ModelEndpoint(models.Model):
    """Where a model can be called. Credentials are encrypted and never returned by the API."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="endpoints")
    endpoint_type = models.CharField(max_length=50, choices=EndpointType.choices)
    endpoint_url = models.CharField(max_length=255, null=True, blank=True)
    auth_type = models.CharField(max_length=50, choices=AuthType.choices, null=True, blank=True)
    headers = models.JSONField(null=True, blank=True, help_text="Non-secret headers sent with each call.")
    api_key = EncryptedTextField(null=True, blank=True, help_text="Encrypted at rest; write-only.")
    secret_headers = EncryptedJSONField(
        null=True, blank=True, help_text="Authorization-like headers, encrypted at rest; write-only."
    )
    source = models.ForeignKey(
        "discovery.ProviderSource",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="endpoints",
        help_text="The provider source that manages this endpoint; empty for endpoints added by hand.",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # auto_now is skipped by bulk_update(): bulk writers (discovery) set it explicitly.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "model_endpoints"
        ordering = ["id"]
        constraints = [
            # One endpoint per (model, source): a model listed by two Ollama hosts has two endpoints.
            models.UniqueConstraint(
                fields=["model", "source"], condition=Q(source__isnull=False), name="model_endpoints_one_per_source"
            ),
        ]

    def __str__(self) -> str:
        # Names the model (as capabilities and parameters do) and not the URL, which may carry credentials.
        return f"{_model_label(self)}: {self.endpoint_type} endpoint"


class ModelCapability(models.Model):
    """How strong a model is at one capability, on a 0-1 scale."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="capabilities")
    capability = models.CharField(max_length=50)
    capability_score = models.FloatField()
    # A measured score is set_by=discovery (the system's, not an operator's): its evidence_source
    # tells it apart, and discovery's sync leaves measured rows to the derivation task.
    set_by = models.CharField(max_length=20, choices=SetBy.choices, default=SetBy.OPERATOR)
    evidence_source = models.CharField(
        max_length=20, choices=EvidenceSource.choices, default=EvidenceSource.OPERATOR, db_index=True
    )
    # The evidence's free-text note (the API's ``evidence.note``); the column keeps its old name.
    evidence = models.CharField(
        max_length=300, blank=True, default="", help_text="Where the score comes from (catalog source, default rule)."
    )
    metric_name = models.CharField(max_length=100, null=True, blank=True, help_text="Measured scores: the metric.")
    task_category = models.CharField(max_length=100, null=True, blank=True, help_text="Measured scores: the task.")
    sample_size = models.PositiveIntegerField(null=True, blank=True, help_text="Samples the score was measured over.")
    window_start = models.DateTimeField(null=True, blank=True, help_text="First record of the measured window.")
    window_end = models.DateTimeField(null=True, blank=True, help_text="Last record of the measured window.")
    evaluated_at = models.DateTimeField(null=True, blank=True, help_text="When the score was last evaluated.")

    # The columns of a score's evidence (the API's ``evidence`` object, with evaluated_at), in its order.
    EVIDENCE_FIELDS: ClassVar[tuple[str, ...]] = (
        "evidence_source",
        "evidence",
        "metric_name",
        "task_category",
        "sample_size",
        "window_start",
        "window_end",
    )

    class Meta:
        db_table = "model_capabilities"
        ordering = ["capability"]
        verbose_name_plural = "model capabilities"
        constraints = [
            models.UniqueConstraint(fields=["model", "capability"], name="model_capabilities_model_capability_uniq"),
            models.CheckConstraint(
                condition=Q(capability_score__gte=0) & Q(capability_score__lte=1),
                name="model_capabilities_score_between_0_and_1",
            ),
            models.CheckConstraint(condition=~Q(capability=""), name="model_capabilities_capability_not_empty"),
        ]
        indexes = [models.Index(fields=["capability", "capability_score"], name="model_capabilities_cap_score")]

    def __str__(self) -> str:
        # Names the model, so that an audit entry of a capability says whose it is.
        return f"{_model_label(self)}: {self.capability}"


class CapabilityMetric(models.Model):
    """How a capability's measured score is derived from performance records (registry.selection.scores)."""

    capability = models.CharField(max_length=50, unique=True)
    metric_name = models.CharField(max_length=100, help_text="The performance metric, a 0-1 rate (success_rate).")
    task_category = models.CharField(
        max_length=100, null=True, blank=True, help_text="Only records of this task category; empty: any category."
    )
    window_days = models.PositiveIntegerField(default=30, help_text="Records of the last N days count.")
    min_samples = models.PositiveIntegerField(
        default=50, help_text="Fewer samples than this in the window: no measured score."
    )
    stale_after_days = models.PositiveIntegerField(
        default=7, help_text="Decay half-life: without fresh samples, the sample size halves every N days."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "capability_metrics"
        ordering = ["capability"]
        verbose_name = "capability metric"
        constraints = [
            models.CheckConstraint(condition=~Q(capability=""), name="capability_metrics_capability_not_empty"),
            models.CheckConstraint(condition=~Q(metric_name=""), name="capability_metrics_metric_not_empty"),
            models.CheckConstraint(condition=Q(window_days__gte=1), name="capability_metrics_window_positive"),
            models.CheckConstraint(condition=Q(min_samples__gte=1), name="capability_metrics_min_samples_positive"),
            models.CheckConstraint(condition=Q(stale_after_days__gte=1), name="capability_metrics_half_life_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.capability} <- {self.metric_name}"


class ModelParameter(models.Model):
    """A tunable parameter of a model with its default and, where it has one, its range."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="parameters")
    parameter_name = models.CharField(max_length=100)
    default_value = models.JSONField()
    min_value = models.JSONField(null=True, blank=True)
    max_value = models.JSONField(null=True, blank=True)
    description = models.TextField(null=True, blank=True)
    set_by = models.CharField(max_length=20, choices=SetBy.choices, default=SetBy.OPERATOR)

    class Meta:
        db_table = "model_parameters"
        ordering = ["parameter_name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "parameter_name"], name="model_parameters_model_name_uniq"),
            models.CheckConstraint(condition=~Q(parameter_name=""), name="model_parameters_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{_model_label(self)}: {self.parameter_name}"


class ModelPerformance(models.Model):
    """One measurement of a model (latency, accuracy, ...), optionally for a task category."""

    model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="performance_records"
    )
    model_name = models.CharField(max_length=100, help_text="The model's name when recorded; kept after deletion.")
    timestamp = models.DateTimeField(default=timezone.now)
    metric_name = models.CharField(max_length=100)
    metric_value = models.FloatField()
    task_category = models.CharField(max_length=100, null=True, blank=True)
    sample_size = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "model_performance"
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "model performance records"
        constraints = [
            models.CheckConstraint(
                condition=Q(sample_size__isnull=True) | Q(sample_size__gt=0),
                name="model_performance_sample_size_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["model", "timestamp"], name="model_performance_model_ts"),
            models.Index(fields=["model", "metric_name", "timestamp"], name="model_performance_metric_ts"),
            # The console's newest-first list and its date filters, across all models.
            models.Index(fields=["timestamp"], name="model_performance_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} {self.metric_name}={self.metric_value}"


class ModelPrice(models.Model):
    """A model's price per million tokens from ``effective_from`` on: usage is costed at the price in force then."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="prices")
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, help_text="USD per million input tokens.")
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, help_text="USD per million output tokens.")
    # Unknown (None): cached input tokens are costed at the input price, as if no cache were used.
    cache_read_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per million cached input tokens read."
    )
    cache_write_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per million input tokens cached."
    )
    effective_from = models.DateTimeField(help_text="In force from this moment until the next price's.")
    # False when the price was only seen at effective_from (a discovery run, a price typed on the
    # model) rather than stated from then: as a model's first price it also costs the usage before
    # it, which no other price can (registry/telemetry/costing.py).
    start_known = models.BooleanField(
        default=True,
        help_text="The price is in force from effective_from, as stated; unchecked: only seen from then "
        "(as the model's first price it also costs earlier usage).",
    )
    set_by = models.CharField(max_length=20, choices=SetBy.choices, default=SetBy.OPERATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "model_prices"
        ordering = ["-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="model_prices_one_per_moment"),
            models.CheckConstraint(condition=Q(input_per_mtok__gte=0), name="model_prices_input_not_negative"),
            models.CheckConstraint(condition=Q(output_per_mtok__gte=0), name="model_prices_output_not_negative"),
            models.CheckConstraint(
                condition=Q(cache_read_per_mtok__isnull=True) | Q(cache_read_per_mtok__gte=0),
                name="model_prices_cache_read_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cache_write_per_mtok__isnull=True) | Q(cache_write_per_mtok__gte=0),
                name="model_prices_cache_write_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{_model_label(self)}: from {self.effective_from:%Y-%m-%d %H:%M}"


class ModelRuntime(models.Model):
    """What one Ollama host (a provider source) last said about a model in memory (``GET /api/ps``).

    One row per (model, source). A poll that no longer lists the model keeps its row with
    ``loaded=False`` and that poll's ``checked_at``: "checked, not loaded" differs from "never
    checked" (no row). Observations, not configuration: polls write them in bulk, unaudited.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="runtimes")
    source = models.ForeignKey("discovery.ProviderSource", on_delete=models.CASCADE, related_name="runtimes")
    loaded = models.BooleanField(default=False)
    size_vram = models.BigIntegerField(null=True, blank=True, help_text="Bytes of the model in GPU memory.")
    context_length = models.PositiveIntegerField(
        null=True, blank=True, help_text="Context the host allocated to the loaded model, in tokens."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the host will unload it if unused.")
    checked_at = models.DateTimeField(help_text="When the host was last asked.")

    class Meta:
        db_table = "model_runtime"
        ordering = ["model_id", "source_id"]
        verbose_name = "runtime (loaded now)"
        verbose_name_plural = "runtime (loaded now)"
        constraints = [
            models.UniqueConstraint(fields=["model", "source"], name="model_runtime_one_per_source"),
            models.CheckConstraint(
                condition=Q(size_vram__isnull=True) | Q(size_vram__gte=0), name="model_runtime_size_vram_not_negative"
            ),
        ]
        # The dashboard's "loaded now" panel reads the loaded rows only.
        indexes = [models.Index(fields=["loaded", "source"], name="model_runtime_loaded")]

    def __str__(self) -> str:
        return f"{_model_label(self)}: {'loaded' if self.loaded else 'not loaded'}"


class CostSource(models.TextChoices):
    """Where a usage record's cost comes from; NULL when it has none (no tokens, or no known price)."""

    REPORTED = "reported", "Reported by the caller"
    COMPUTED = "computed", "Computed from input and output tokens"
    ESTIMATED = "estimated", "Estimated from a bare token count"


class ModelUsageQuerySet(models.QuerySet["ModelUsage"]):
    """Inserts and moves of usage records make sure the day they land on has its partition (PostgreSQL).

    Ingestion does so itself (registry/telemetry/services.py); this covers every other write
    through the ORM, so that none fails with "no partition of relation found for row".
    """

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[ModelUsage]:
        objs = list(objs)
        usage_partitions_ensure(obj.timestamp for obj in objs)
        return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        if isinstance(kwargs.get("timestamp"), datetime):
            usage_partitions_ensure([kwargs["timestamp"]])
        return super().update(**kwargs)


class ModelUsage(models.Model):
    """Usage reported by callers: requests, tokens, errors, latency and cost over a moment."""

    model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    model_name = models.CharField(max_length=100, help_text="The model's name when recorded; kept after deletion.")
    timestamp = models.DateTimeField(default=timezone.now)
    token_count = models.IntegerField(null=True, blank=True, help_text="input_tokens + output_tokens when given.")
    input_tokens = models.IntegerField(null=True, blank=True)
    output_tokens = models.IntegerField(null=True, blank=True)
    # Part of input_tokens (OpenAI's convention: prompt_tokens includes cached_tokens) that the
    # provider read from its prompt cache; costed at the cache-read price.
    cached_input_tokens = models.IntegerField(
        null=True, blank=True, help_text="Of input_tokens, how many were read from the provider's prompt cache."
    )
    request_count = models.IntegerField(default=1)
    average_latency = models.FloatField(null=True, blank=True, help_text="Seconds.")
    error_count = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=10, decimal_places=6, null=True, blank=True)
    cost_source = models.CharField(max_length=10, choices=CostSource.choices, null=True, blank=True)
    # The caller's id of the request this record reports, when it gives one: a retried post of the
    # same request is stored once (UsageRequestId holds the ids seen, with a unique key).
    request_id = models.CharField(max_length=200, null=True, blank=True)

    objects = ModelUsageQuerySet.as_manager()

    class Meta:
        db_table = "model_usage"
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "model usage records"
        constraints = [
            models.CheckConstraint(
                condition=Q(token_count__isnull=True) | Q(token_count__gte=0),
                name="model_usage_token_count_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(input_tokens__isnull=True) | Q(input_tokens__gte=0),
                name="model_usage_input_tokens_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(output_tokens__isnull=True) | Q(output_tokens__gte=0),
                name="model_usage_output_tokens_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cached_input_tokens__isnull=True) | Q(cached_input_tokens__gte=0),
                name="model_usage_cached_input_tokens_not_negative",
            ),
            models.CheckConstraint(condition=Q(request_count__gte=0), name="model_usage_request_count_not_negative"),
            models.CheckConstraint(condition=Q(error_count__gte=0), name="model_usage_error_count_not_negative"),
            models.CheckConstraint(
                condition=Q(average_latency__isnull=True) | Q(average_latency__gte=0),
                name="model_usage_latency_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=Decimal("0")), name="model_usage_cost_not_negative"
            ),
        ]
        # On PostgreSQL the table is partitioned by day of ``timestamp`` (migration 0018,
        # registry/partitions.py), where this index also carries the summed columns.
        indexes = [models.Index(fields=["model", "timestamp"], name="model_usage_model_ts")]

    def __str__(self) -> str:
        return f"{self.model_name} @ {self.timestamp:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        usage_partitions_ensure([self.timestamp])
        super().save(*args, **kwargs)


class UsageRequestId(models.Model):
    """A request id a caller reported usage under, per model name: the key that stores a retried post once.

    Apart from ``model_usage`` because that table is partitioned by day on PostgreSQL, and a unique
    index of a partitioned table must include the partition key: it could only hold "once per
    request id" within a day. Kept ``RETENTION_USAGE_REQUEST_IDS_DAYS`` (7 by default): a retry
    comes within seconds or, through the usage buffer, hours; like other idempotency keys (Stripe
    keeps them a day), the guarantee has a horizon, which is documented.
    """

    # Per model (by name, which outlives the model): a router that falls back to a second model
    # reports both attempts under the same request id.
    model_name = models.CharField(max_length=100)
    request_id = models.CharField(max_length=200)
    recorded_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "model_usage_request_ids"
        constraints = [models.UniqueConstraint(fields=["model_name", "request_id"], name="model_usage_request_id_once")]

    def __str__(self) -> str:
        return f"{self.model_name}: {self.request_id}"


class UsageBufferApplied(models.Model):
    """A usage buffer entry written to ``model_usage``: inserted in the same transaction, so it is never written twice.

    The drain (registry/telemetry/buffering.py) removes an entry from Redis only after the
    transaction that wrote its records commits; a worker that dies in between leaves the entry in
    Redis, and this row tells the next drain it is done. Rows live only until their entry has left
    Redis: the drain deletes them, so the table stays a handful of rows.
    """

    entry = models.CharField(max_length=32, primary_key=True, help_text="The buffer entry's own id (a UUID).")
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "usage_buffer_applied"

    def __str__(self) -> str:
        return f"buffer entry {self.entry}"


class UsageRollup(models.Model):
    """A model's usage in one UTC hour, summed: what statistics read for whole hours (registry/telemetry/usage.py).

    Kept current in the transaction that writes the raw records (registry/telemetry/rollups.py), so
    a committed record is in its hour's rollup; raw rows are pruned long before their rollups
    (``RETENTION_USAGE_ROLLUP_DAYS``). Keyed by the model and its name at record time, as raw rows
    are grouped: a deleted model's rollups stay, attributed by name.
    """

    model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_rollups"
    )
    model_name = models.CharField(max_length=100)
    hour = models.DateTimeField(help_text="The UTC hour's start.")
    records = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    # NULL while no record of the hour has a cost, as SUM(cost) over its records would be.
    cost = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    uncosted_requests = models.BigIntegerField(default=0)
    # Latency is a per-record mean: its sum weighted by the record's requests, over records that report it.
    latency_weighted = models.FloatField(default=0.0)
    latency_requests = models.BigIntegerField(default=0)
    latency_records = models.BigIntegerField(default=0)
    # Records per log-spaced latency bucket (registry/telemetry/histograms.py): {"index": count}.
    latency_histogram = models.JSONField(default=dict)
    # The earliest and latest timestamp of the hour's records: a window edge inside the hour that
    # these show holding all (or none) of its records reads the rollup instead of raw rows
    # (registry/telemetry/usage.py). NULL only for hours whose raw rows were pruned before they existed.
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "model_usage_rollup"
        ordering = ["-hour", "model_name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "model_name", "hour"], name="model_usage_rollup_once"),
        ]
        indexes = [models.Index(fields=["hour"], name="model_usage_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.model_name} @ {self.hour:%Y-%m-%d %H}h"


class AlertKind(models.TextChoices):
    ERROR_RATE = "error_rate", "Error rate above threshold"
    LATENCY = "latency", "Latency worse than baseline"
    UNAVAILABLE = "unavailable", "Model unavailable too long"
    SOURCE_FAILING = "source_failing", "Discovery source failing"
    UNPRICED_USAGE = "unpriced_usage", "Usage of a model without a known price"
    CATALOG_PRICE_JUMP = "catalog_price_jump", "A catalog refresh changed a price more than 100-fold"


class AlertQuerySet(models.QuerySet["Alert"]):
    def open(self) -> AlertQuerySet:
        return self.filter(resolved_at__isnull=True)


class Alert(models.Model):
    """A problem with a model or a discovery source, open until its condition clears."""

    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    source = models.ForeignKey(
        "discovery.ProviderSource", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    # Who acknowledged or resolved it, by username: the record outlives the user account.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(
        max_length=150, blank=True, default="", help_text="Empty when the alert check resolved it."
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        db_table = "alerts"
        ordering = ["-opened_at"]
        constraints = [
            # At most one open alert of a kind per subject: a check that runs again cannot duplicate it.
            models.UniqueConstraint(
                fields=["kind", "model"],
                condition=Q(resolved_at__isnull=True, model__isnull=False),
                name="alerts_one_open_per_model_kind",
            ),
            models.UniqueConstraint(
                fields=["kind", "source"],
                condition=Q(resolved_at__isnull=True, source__isnull=False),
                name="alerts_one_open_per_source_kind",
            ),
            models.CheckConstraint(
                condition=Q(model__isnull=False) | Q(source__isnull=False), name="alerts_have_a_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class ModelDocument(models.Model):
    """A model's rendered JSON body, as the read path serves it; kept fresh by triggers (registry/reads/documents.py).

    Not a foreign key in the database: triggers and reads write these rows at any time, also for a
    model deleted a moment before (a leftover row is harmless: ids are not reused, and a model's
    insertion marks its document stale anyway).
    """

    model = models.OneToOneField(
        RegisteredModel,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="document",
    )
    # Text, not bytea: PostgreSQL sends bytea hex-encoded, twice the bytes to read and decode (measured).
    body = models.TextField(null=True)
    format_version = models.CharField(max_length=100, default="")
    revision = models.BigIntegerField(default=0)

    class Meta:
        db_table = "model_documents"

    def __str__(self) -> str:
        return f"document of model {self.model_id}"


class StatusEventKind(models.TextChoices):
    """What a status event records: each kind is one lane of a model's availability history."""

    STATUS = "status", "Deployment status"
    RUNTIME = "runtime", "Loaded on a host"
    ALERT = "alert", "Availability alert"


class StatusEventOrigin(models.TextChoices):
    """Which writer recorded a status event."""

    DISCOVERY = "discovery", "Discovery run"
    RUNTIME = "runtime", "Runtime check (GET /api/ps)"
    OPERATOR = "operator", "Operator"
    ALERT_CHECK = "alert_check", "Alert check"
    HISTORY_START = "history_start", "Start of history"


class ModelStatusEventQuerySet(models.QuerySet["ModelStatusEvent"]):
    def of_lane(self, kind: str, *, alert_kind: str = "") -> ModelStatusEventQuerySet:
        return self.filter(kind=kind, alert_kind=alert_kind)


class ModelStatusEvent(models.Model):
    """A change in a model's availability: its status, a host loading or unloading it, an availability alert.

    Written by the code that makes the change (registry.telemetry.availability), never by a signal;
    the intervals of a model's availability history are derived from these rows. ``state`` is the
    status reached (available, unavailable, deprecated), ``loaded``/``unloaded`` for a host, or
    ``opened``/``resolved`` for an alert. The run and the alert are plain ids: retention prunes
    runs and resolved alerts on their own schedule, and an event outlives them.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="status_events")
    at = models.DateTimeField(help_text="When the change happened (the run, the check or the save that saw it).")
    kind = models.CharField(max_length=20, choices=StatusEventKind.choices)
    state = models.CharField(max_length=20)
    alert_kind = models.CharField(max_length=30, blank=True, default="", help_text="Alert events: the alert's kind.")
    origin = models.CharField(max_length=20, choices=StatusEventOrigin.choices)
    cause = models.CharField(max_length=300, blank=True, default="")
    actor = models.CharField(max_length=150, blank=True, default="", help_text="The operator's username, if one.")
    source = models.ForeignKey(
        "discovery.ProviderSource", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_id = models.BigIntegerField(null=True, blank=True, help_text="The discovery run that saw the change.")
    alert_id = models.BigIntegerField(null=True, blank=True, help_text="The alert opened or resolved.")

    objects = ModelStatusEventQuerySet.as_manager()

    class Meta:
        db_table = "model_status_events"
        ordering = ["-at", "-id"]
        verbose_name = "status event"
        constraints = [
            models.CheckConstraint(condition=~Q(state=""), name="model_status_events_state_not_empty"),
        ]
        indexes = [
            models.Index(fields=["model", "kind", "at"], name="model_status_events_lane"),
            # Retention's cutoff, across all models.
            models.Index(fields=["at"], name="model_status_events_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.state} @ {self.at:%Y-%m-%d %H:%M}"


class TrustedNetworkRead(models.Model):
    """Token-less requests from PLATFORM_TRUSTED_NETWORKS, counted per client address, method, route and minute.

    A request trusted for its network alone (a read, or a usage post as ``POST``) is on the record as
    a count, not one audit entry a request: web processes add their counts up in memory and upsert
    them every few seconds (registry/access/read_counts.py), so the router's hot path writes nothing
    per request beyond the usage records it posts. The table keeps its name from when only reads were counted.
    """

    minute = models.DateTimeField(help_text="The minute the reads fell in (UTC, seconds zero).")
    client_address = models.GenericIPAddressField()
    network = models.CharField(max_length=64, help_text="The trusted network (CIDR) the address matched.")
    method = models.CharField(max_length=10)
    # The route's pattern (/api/v1/models/{ref}/capabilities), not the path: one row per route
    # however many models a refresh reads, and no path a client makes up adds a row of its own.
    route = models.CharField(max_length=255)
    count = models.BigIntegerField()

    class Meta:
        db_table = "trusted_network_reads"
        ordering = ["-minute", "client_address", "route", "method"]
        constraints = [
            # The upsert's conflict target: concurrent flushes of several processes add to one row.
            models.UniqueConstraint(
                fields=["minute", "client_address", "method", "route"], name="trusted_network_reads_one_per_minute"
            ),
        ]
        indexes = [models.Index(fields=["client_address", "minute"], name="trusted_reads_client_minute")]

    def __str__(self) -> str:
        return f"{self.client_address} {self.method} {self.route} x{self.count} at {self.minute:%Y-%m-%d %H:%M}"
