"""The console's front page: seeded figures, links to the filtered lists, charts, bounded queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from discovery.models import DiscoveryRun, RunStatus
from registry.console.charts import Series, line_chart, stacked_bar_chart
from registry.console.dashboard import model_charts, usage_overview
from registry.models import Alert, AlertKind, ModelRuntime, ModelStatus, RegisteredModel
from registry.telemetry.histograms import RELATIVE_ERROR
from tests.factories import (
    ModelPerformanceFactory,
    ModelUsageFactory,
    ProviderSourceFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_models_by_provider_and_status_with_links(staff: dict[str, Client]) -> None:
    RegisteredModelFactory.create_batch(3, provider="ollama")
    RegisteredModelFactory(provider="ollama", status=ModelStatus.UNAVAILABLE)
    RegisteredModelFactory(provider="openai")

    page = staff["viewer"].get("/admin/").content.decode()

    assert "Models by provider and status" in page
    assert 'href="/admin/registry/registeredmodel/?provider__exact=ollama&amp;status__exact=available">3</a>' in page
    assert 'href="/admin/registry/registeredmodel/?provider__exact=ollama&amp;status__exact=unavailable">1</a>' in page
    assert 'href="/admin/registry/registeredmodel/?provider__exact=openai">1</a>' in page


def test_the_dashboard_shows_each_sources_last_run_and_the_open_alerts(staff: dict[str, Client]) -> None:
    source = ProviderSourceFactory(name="gpu-box")
    DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED, models_added=7)
    DiscoveryRun.objects.create(source=source, status=RunStatus.FAILED, error_message="connection refused")
    model = RegisteredModelFactory(name="qwen")
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=model, message="qwen error rate 12%")
    Alert.objects.create(kind=AlertKind.LATENCY, model=model, message="old one", resolved_at=timezone.now())

    page = staff["viewer"].get("/admin/").content.decode()

    assert "connection refused" in page  # the newest run, not the successful one before it
    assert 'class="status run-failed"' in page
    assert '<a href="/admin/registry/alert/?state=open">1</a>' in page
    assert "qwen error rate 12%" in page
    assert "old one" not in page


def test_the_dashboard_charts_the_last_24_hours_of_usage_by_model(staff: dict[str, Client]) -> None:
    busy, quiet = RegisteredModelFactory(name="busy-model"), RegisteredModelFactory(name="quiet-model")
    now = timezone.now()
    ModelUsageFactory.create_batch(3, model=busy, request_count=10, token_count=500, timestamp=now - timedelta(hours=1))
    ModelUsageFactory(model=quiet, request_count=2, error_count=1, timestamp=now - timedelta(hours=2))
    ModelUsageFactory(model=quiet, request_count=99, timestamp=now - timedelta(days=3))  # outside the window

    page = staff["viewer"].get("/admin/").content.decode()

    assert '<svg class="chart"' in page
    assert "busy-model · " in page  # a bar's tooltip
    top = page[page.index('id="top-models"') :]
    assert top.index("busy-model") < top.index("quiet-model")
    assert f"?model__id__exact={busy.pk}&amp;timestamp__gte=" in top
    assert ">30</a>" in top  # busy's requests
    assert ">2</a>" in top  # quiet's, without the old record


def test_the_dashboard_says_when_there_is_no_usage_yet(staff: dict[str, Client]) -> None:
    page = staff["viewer"].get("/admin/").content.decode()

    assert "No usage recorded in the last 24 hours yet." in page


def test_the_dashboard_costs_the_same_queries_for_more_models_and_usage(staff: dict[str, Client]) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff["admin"].get("/admin/").status_code == 200
        return len(captured)

    source = ProviderSourceFactory()
    DiscoveryRun.objects.create(source=source, status=RunStatus.SUCCEEDED)
    ModelUsageFactory()
    few = queries()
    for index in range(20):
        model = RegisteredModelFactory(name=f"m-{index}")
        ModelUsageFactory.create_batch(3, model=model)
        DiscoveryRun.objects.create(source=ProviderSourceFactory(), status=RunStatus.SUCCEEDED)
        ModelRuntime.objects.create(model=model, source=source, loaded=True, size_vram=index, checked_at=timezone.now())
    assert queries() == few


def test_staff_without_permissions_get_no_panels(staff: dict[str, Client], role_users: dict) -> None:
    role_users["viewer"].groups.clear()

    page = staff["viewer"].get("/admin/").content.decode()

    assert "Models by provider and status" not in page
    assert "Open alerts" not in page
    assert 'href="/health">Health' in page


def test_usage_overview_groups_the_rest_as_other_models() -> None:
    now = timezone.now()
    for index in range(7):
        ModelUsageFactory(model=RegisteredModelFactory(name=f"m{index}"), request_count=index + 1, timestamp=now)

    overview = usage_overview(now=now + timedelta(minutes=1))

    assert [row["model_name"] for row in overview.top[:2]] == ["m6", "m5"]
    assert [series.name for series in overview.series][-1] == "2 other model(s)"
    assert sum(overview.series[-1].values) == 1 + 2


def test_usage_overview_charts_a_deleted_models_hours_under_its_name() -> None:
    now = timezone.now().replace(minute=30)
    gone, kept = RegisteredModelFactory(name="gone"), RegisteredModelFactory(name="kept")
    for hours_ago, requests in ((1, 5), (3, 7)):
        ModelUsageFactory(model=gone, request_count=requests, timestamp=now - timedelta(hours=hours_ago))
    ModelUsageFactory(model=kept, request_count=2, timestamp=now - timedelta(hours=2))
    gone.delete()  # its usage stays, under its name, in the records and their rollups

    overview = usage_overview(now=now)

    assert [(row["model_id"], row["model_name"], row["requests"]) for row in overview.top] == [
        (None, "gone", 12),
        (kept.pk, "kept", 2),
    ]
    series = {item.name: item.values for item in overview.series}
    assert sorted(v for v in series["gone"] if v) == [5, 7]
    assert sum(series["kept"]) == 2


def test_model_charts_bucket_usage_latency_and_performance() -> None:
    model = RegisteredModelFactory()
    now = timezone.now().replace(minute=30)
    for latency in (0.1, 0.2, 0.3, 0.4, 1.0):
        ModelUsageFactory(model=model, average_latency=latency, timestamp=now - timedelta(hours=1))
    ModelPerformanceFactory(
        model=model, metric_name="success_rate", metric_value=0.8, timestamp=now - timedelta(hours=2)
    )

    charts = model_charts(model_id=model.pk, chart_range="24h", now=now)

    assert charts.totals["requests"] == 5
    p50, p95 = charts.latency
    # From the hour's latency histogram: within its stated bound of percentile_cont's 0.3 and 0.88.
    assert [v for v in p50.values if v is not None] == [pytest.approx(0.3, rel=RELATIVE_ERROR)]
    assert [v for v in p95.values if v is not None] == [pytest.approx(0.88, rel=RELATIVE_ERROR)]
    assert list(charts.performance) == ["success_rate"]
    assert len(charts.labels) == 25  # the partial hour at each end


def test_charts_escape_names_and_say_when_empty() -> None:
    svg = stacked_bar_chart(title="t", labels=["a", "b"], series=[Series("<b>x</b>", [1, 2])], empty="none")
    assert "&lt;b&gt;x&lt;/b&gt;" in svg
    assert "<b>" not in svg
    assert line_chart(title="t", labels=["a"], series=[Series("s", [None])], empty="No data yet.") == (
        '<p class="chart-empty">No data yet.</p>'
    )


def test_a_models_page_shows_its_charts_and_range_links(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory()
    ModelUsageFactory(model=model, timestamp=timezone.now() - timedelta(days=3))

    day = staff["viewer"].get(f"/admin/registry/registeredmodel/{model.pk}/change/").content.decode()
    week = staff["viewer"].get(f"/admin/registry/registeredmodel/{model.pk}/change/?range=7d").content.decode()

    assert "No usage recorded in this range yet." in day
    assert '<svg class="chart"' in week
    assert 'href="?range=30d#model-charts"' in week
    assert f"?model__id__exact={model.pk}" in week  # the usage, performance and alert links


def test_the_dashboard_lists_the_models_loaded_now_with_host_vram_and_expiry(staff: dict[str, Client]) -> None:
    host = ProviderSourceFactory(name="gpu-box")
    now = timezone.now()
    big, idle = RegisteredModelFactory(name="qwen3:8b"), RegisteredModelFactory(name="idle:latest")
    ModelRuntime.objects.create(
        model=big, source=host, loaded=True, size_vram=6 * 2**30, expires_at=now + timedelta(minutes=4), checked_at=now
    )
    ModelRuntime.objects.create(model=idle, source=host, loaded=False, checked_at=now)

    page = staff["viewer"].get("/admin/").content.decode()

    panel = page[page.index('id="panel-loaded"') :]
    panel = panel[: panel.index("</section>")]
    assert f'href="/admin/registry/registeredmodel/{big.pk}/change/">qwen3:8b</a>' in panel
    assert "gpu-box" in panel
    assert "6.0\xa0GB" in panel
    assert "in 3\xa0minutes" in panel or "in 4\xa0minutes" in panel
    assert "idle:latest" not in panel


def test_the_dashboard_says_when_nothing_is_loaded(staff: dict[str, Client]) -> None:
    page = staff["viewer"].get("/admin/").content.decode()

    assert "No Ollama host reported a loaded model at its last check." in page


def test_the_dashboard_prints_unknown_cost_as_unknown_never_as_zero(staff: dict[str, Client]) -> None:
    now = timezone.now() - timedelta(hours=1)
    ModelUsageFactory(model=RegisteredModelFactory(name="unpriced-model"), request_count=916, cost=None, timestamp=now)
    partly = RegisteredModelFactory(name="partly-priced")
    ModelUsageFactory(model=partly, request_count=40, cost=Decimal("1.75"), timestamp=now)
    ModelUsageFactory(model=partly, request_count=5, cost=None, timestamp=now)
    ModelUsageFactory(
        model=RegisteredModelFactory(name="gpt-costed"), request_count=3, cost=Decimal("0.5"), timestamp=now
    )

    page = staff["viewer"].get("/admin/").content.decode()

    rows = {
        name: page[page.index(f">{name}</a>") :].split("</tr>")[0]
        for name in ("unpriced-model", "partly-priced", "gpt-costed")
    }
    assert "unknown (916 requests uncosted)" in rows["unpriced-model"]
    assert "0.0000" not in rows["unpriced-model"]
    assert "1.7500 + 5 requests uncosted" in rows["partly-priced"]
    assert "0.5000" in rows["gpt-costed"]
    assert "uncosted" not in rows["gpt-costed"]


def test_a_models_charts_print_unknown_cost_as_unknown(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="unpriced-model")
    ModelUsageFactory(model=model, request_count=916, cost=None, timestamp=timezone.now() - timedelta(hours=1))

    page = staff["viewer"].get(f"/admin/registry/registeredmodel/{model.pk}/change/").content.decode()

    totals = page[page.index('class="chart-ranges"') :].split("</p>")[0]
    assert "cost unknown (916 requests uncosted)" in totals
    assert "0.0000" not in totals


def test_a_sources_added_and_unavailable_counts_open_exactly_the_models_its_run_changed(
    staff: dict[str, Client],
) -> None:
    """Issue 23, item 6h: the counts opened every model of the source (or every unavailable one)."""
    source = ProviderSourceFactory(name="gpu-box")
    for name in ("old:7b", "new:7b", "newer:14b", "gone:3b", "gone-long-ago:1b"):
        RegisteredModelFactory(name=name, source=source)
    RegisteredModelFactory(name="gone-long-ago:1b-elsewhere", source=ProviderSourceFactory(name="other"))
    RegisteredModel.objects.filter(name__startswith="gone").update(status=ModelStatus.UNAVAILABLE)
    run = DiscoveryRun.objects.create(
        source=source,
        status=RunStatus.SUCCEEDED,
        models_added=2,
        models_unavailable=1,
        changes={"added": ["new:7b", "newer:14b"], "updated": [], "unavailable": ["gone:3b"], "skipped": []},
    )

    page = staff["viewer"].get("/admin/").content.decode()
    added = f"/admin/registry/registeredmodel/?run_change={run.pk}.added"
    unavailable = f"/admin/registry/registeredmodel/?run_change={run.pk}.unavailable"
    assert f'<a href="{added}" title="the models this run added">2</a>' in page
    assert f'<a href="{unavailable}" title="the models this run made unavailable">1</a>' in page

    def listed(url: str) -> set[str]:
        response = staff["viewer"].get(url)
        assert response.status_code == 200
        return {row.name for row in response.context["cl"].result_list}

    assert listed(added) == {"new:7b", "newer:14b"}
    assert listed(unavailable) == {"gone:3b"}  # not the one gone before this run
    assert "made unavailable by gpu-box" in staff["viewer"].get(unavailable).content.decode()
    assert listed("/admin/registry/registeredmodel/?run_change=999999.added") == set()
