"""The console's Compare page and spend over time: rendered for staff, links, unknown cost, bounded queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.console.charts import sparkline, stacked_bar_chart
from registry.console.compare import availability_text
from registry.console.dashboard import spend_overview, usage_overview
from registry.console.figures import count_text, percent_text
from registry.models import Alert, AlertKind, ModelStatus, StatusEventOrigin
from registry.telemetry.availability import status_change_record
from tests.factories import ModelCapabilityFactory, ModelUsageFactory, RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.django_db

COMPARE = "/admin/compare/"


@pytest.fixture
def pair() -> list[Any]:
    now = timezone.now()
    mini = RegisteredModelFactory(
        name="gpt-4o-mini", provider="openai", context_window=128000, input_cost_per_mtok=Decimal("0.15")
    )
    qwen = RegisteredModelFactory(name="qwen2.5-coder:7b", context_window=32768)
    ModelCapabilityFactory(model=mini, capability="code", capability_score=0.82)
    ModelCapabilityFactory(model=qwen, capability="code", capability_score=0.74)
    ModelUsageFactory(model=mini, timestamp=now - timedelta(hours=1), request_count=1200, cost=Decimal("2.5"))
    ModelUsageFactory(model=qwen, timestamp=now - timedelta(hours=2), request_count=916, token_count=1234567)
    Alert.objects.create(kind=AlertKind.ERROR_RATE, model=qwen, message="qwen error rate 27%")
    return [mini, qwen]


def test_the_compare_page_shows_a_column_per_model_with_the_best_marked(
    staff: dict[str, Client], pair: list[Any]
) -> None:
    page = staff["viewer"].get(COMPARE, {"models": "gpt-4o-mini,qwen2.5-coder:7b"}).content.decode()

    assert page.count('class="model-column"') == 2
    context_row = page.split('data-key="context_window"')[1].split("</tr>")[0]
    assert context_row.count('class="best"') == 1
    assert "128,000" in context_row
    assert "32,768" in context_row
    code_row = page.split('data-key="capability:code"')[1].split("</tr>")[0]
    assert '<td class="best">0.82' in code_row
    assert "operator" in code_row  # its evidence
    assert "qwen error rate 27%" in page
    assert page.count('<svg class="sparkline"') == 6  # requests, latency, spend for each model
    assert 'data-key="availability_30d"' in page


def test_the_compare_page_shows_availability_per_window_partial_and_unknown(
    staff: dict[str, Client], pair: list[Any]
) -> None:
    mini = pair[0]
    now = timezone.now()
    for status, cause, ago in (
        (ModelStatus.AVAILABLE, "listed", timedelta(days=3)),
        (ModelStatus.UNAVAILABLE, "gone", timedelta(hours=6)),
        (ModelStatus.AVAILABLE, "back", timedelta(hours=5, minutes=48)),
    ):
        status_change_record(
            model_id=mini.pk, status=status, origin=StatusEventOrigin.DISCOVERY, cause=cause, at=now - ago
        )

    page = staff["viewer"].get(COMPARE, {"models": "gpt-4o-mini,qwen2.5-coder:7b"}).content.decode()

    assert "Available (% of the period)" in page
    day = page.split('data-key="availability_24h"')[1].split("</tr>")[0]
    assert "last 24 hours" in day
    assert "99.1 %" in day  # 12 minutes down of 24 hours: 99.17 %, floored
    assert "% known)" not in day  # the whole day is known
    assert "unknown" in day  # qwen has no history
    assert 'class="best"' not in day  # one known value: nothing to compare
    week = page.split('data-key="availability_7d"')[1].split("</tr>")[0]
    assert "(of 42 % known)" in week  # three days of seven


def test_availability_reads_in_percent_floored_with_the_known_part() -> None:
    assert availability_text({"available_fraction": 1.0, "known_fraction": 1.0}) == "100.0 %"
    assert availability_text({"available_fraction": 0.99996, "known_fraction": 1.0}) == "99.9 %"
    assert availability_text({"available_fraction": 0.992, "known_fraction": 0.6}) == (
        '99.2 % <span class="quiet">(of 60 % known)</span>'
    )
    assert availability_text({"available_fraction": 0.0, "known_fraction": 0.999}) == (
        '0.0 % <span class="quiet">(of 99 % known)</span>'
    )


def test_unknown_spend_reads_unknown_with_its_uncosted_requests(staff: dict[str, Client], pair: list[Any]) -> None:
    page = staff["viewer"].get(COMPARE, {"models": "gpt-4o-mini,qwen2.5-coder:7b"}).content.decode()

    spend = page.split('data-key="spend_24h"')[1].split("</tr>")[0]
    assert "2.5000" in spend
    assert "unknown (916 requests uncosted)" in spend
    assert "0.0000" not in spend
    tokens = page.split('data-key="tokens_24h"')[1].split("</tr>")[0]
    assert "1,234,567" in tokens


def test_the_price_on_a_date_has_its_own_group(staff: dict[str, Client], pair: list[Any]) -> None:
    page = staff["viewer"].get(COMPARE, {"models": "gpt-4o-mini,qwen2.5-coder:7b", "date": "2026-01-01"})

    assert "Prices on the chosen date (USD per million tokens): 2026-01-01 00:00 UTC" in page.content.decode()


def test_the_header_links_to_compare_for_those_who_may_view_models(staff: dict[str, Client]) -> None:
    page = staff["viewer"].get("/admin/").content.decode()

    assert '<a href="/admin/compare/">Compare</a>' in page


def test_compare_is_refused_to_staff_who_may_not_view_models(pair: list[Any], plain_static_files: None) -> None:
    user = UserFactory(username="no-role", is_staff=True)
    client = Client()
    client.force_login(user)

    response = client.get(COMPARE, {"models": "gpt-4o-mini,qwen2.5-coder:7b"})

    assert response.status_code == 403


def test_bad_models_are_refused_beside_the_field(staff: dict[str, Client], pair: list[Any]) -> None:
    page = staff["viewer"].get(COMPARE, {"models": "gpt-4o-mini,nope"}).content.decode()

    assert 'class="field-models errors"' in page
    assert "No such model: nope." in page
    assert 'id="compare-table"' not in page


def test_one_model_asks_for_another_rather_than_an_error(staff: dict[str, Client], pair: list[Any]) -> None:
    page = staff["viewer"].get(COMPARE, {"models": str(pair[0].pk)}).content.decode()

    assert "Choose at least one more model to compare gpt-4o-mini with." in page
    assert "errorlist" not in page
    assert '<option value="qwen2.5-coder:7b">' in page
    assert '<option value="gpt-4o-mini">' not in page  # already compared


def test_adding_a_model_leads_to_the_shareable_address(staff: dict[str, Client], pair: list[Any]) -> None:
    response = staff["viewer"].get(COMPARE, {"models": str(pair[0].pk), "add": "qwen2.5-coder:7b"})

    assert response.status_code == 302
    assert response["Location"] == f"{COMPARE}?models={pair[0].pk}%2Cqwen2.5-coder%3A7b"


def test_the_model_list_action_compares_the_ticked_models(staff: dict[str, Client], pair: list[Any]) -> None:
    response = staff["viewer"].post(
        "/admin/registry/registeredmodel/",
        {"action": "compare_selected", "_selected_action": [model.pk for model in pair]},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{COMPARE}?models=gpt-4o-mini%2Cqwen2.5-coder%3A7b"


def test_the_action_with_one_model_says_how_many_to_tick(staff: dict[str, Client], pair: list[Any]) -> None:
    response = staff["viewer"].post(
        "/admin/registry/registeredmodel/",
        {"action": "compare_selected", "_selected_action": [pair[0].pk]},
        follow=True,
    )

    assert "Tick 2 to 6 models to compare them." in response.content.decode()


def test_a_models_page_links_to_compare_with_it(staff: dict[str, Client], pair: list[Any]) -> None:
    page = staff["viewer"].get(f"/admin/registry/registeredmodel/{pair[0].pk}/change/").content.decode()

    assert f'href="{COMPARE}?models={pair[0].pk}" id="compare-with"' in page


def test_compare_queries_do_not_grow_with_models_or_usage(staff: dict[str, Client]) -> None:
    now = timezone.now()
    models = [RegisteredModelFactory() for _ in range(6)]
    for model in models:
        ModelCapabilityFactory(model=model, capability="code")
        for day in range(0, 30, 2):
            ModelUsageFactory(model=model, timestamp=now - timedelta(days=day, minutes=1))
        Alert.objects.create(kind=AlertKind.LATENCY, model=model, message="slow")
        for day in range(0, 40, 2):  # a status change every other day: the availability rows read them
            status_change_record(
                model_id=model.pk,
                status=ModelStatus.UNAVAILABLE if day % 4 else ModelStatus.AVAILABLE,
                origin=StatusEventOrigin.DISCOVERY,
                cause="gone" if day % 4 else "listed",
                at=now - timedelta(days=day, hours=1),
            )
    client = staff["viewer"]
    query = {"models": ",".join(model.name for model in models)}
    client.get(COMPARE, query)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(COMPARE, query).status_code == 200

    # Session, user, permissions, the picker, then the comparison's fixed set (see the API's test).
    assert len(queries) <= 19, [query["sql"][:100] for query in queries.captured_queries]


# --- Spend over time ---------------------------------------------------------------------------------


def test_a_models_charts_draw_spend_per_bucket_and_mark_uncosted_requests(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="priced")
    now = timezone.now()
    ModelUsageFactory(model=model, timestamp=now - timedelta(hours=1), cost=Decimal("1.25"), request_count=3)
    ModelUsageFactory(model=model, timestamp=now - timedelta(hours=3), cost=None, request_count=916)

    page = staff["viewer"].get(f"/admin/registry/registeredmodel/{model.pk}/change/").content.decode()

    assert "Spend (USD; uncosted requests marked under their bucket)" in page
    assert "cost (USD) · " in page
    assert ": 1.25</title>" in page
    assert "cost unknown for 916 requests uncosted</title>" in page  # the mark of the uncosted hour
    assert "cost unknown: 916 requests uncosted" in page  # the legend
    assert "919 requests" in page
    assert "error rate 0.00 %" in page


def test_spend_overview_keeps_the_five_largest_and_the_rest(settings: Any) -> None:
    now = timezone.now()
    for index in range(7):
        model = RegisteredModelFactory(name=f"m{index}")
        ModelUsageFactory(model=model, timestamp=now - timedelta(hours=2), cost=Decimal(index + 1))
    gone = RegisteredModelFactory(name="uncosted-only")
    ModelUsageFactory(model=gone, timestamp=now - timedelta(hours=2), cost=None, request_count=916)

    spend = spend_overview(spend_range="24h", now=now)

    assert [row["model_name"] for row in spend.rows] == ["m6", "m5", "m4", "m3", "m2", "the rest (3 models)"]
    assert spend.rows[-1]["cost"] == Decimal(3)  # m1 + m0, and nothing known of uncosted-only
    assert spend.rows[-1]["uncosted_requests"] == 916
    assert sum(spend.uncosted) == 916
    assert len(spend.labels) == 25  # the hours of the window, both ends


def test_the_24_hour_spend_from_the_usage_overview_matches_its_own_queries() -> None:
    now = timezone.now()
    for index in range(8):
        model = RegisteredModelFactory(name=f"m{index}")
        for hours in (1, 5, 30):
            ModelUsageFactory(
                model=model,
                timestamp=now - timedelta(hours=hours, minutes=index),
                cost=None if index == 7 else Decimal(index + hours),
                request_count=index + 1,
            )

    queried = spend_overview(spend_range="24h", now=now)
    with CaptureQueriesContext(connection) as overview_queries:
        usage = usage_overview(now=now)
    with CaptureQueriesContext(connection) as queries:
        reused = spend_overview(spend_range="24h", usage=usage)
    with CaptureQueriesContext(connection) as own_queries:
        spend_overview(spend_range="24h", now=now)

    # The totals come from the usage overview's read; only the hours are read: the five's, and
    # every model's (the rest is the difference), a query of rollups each, the partial hours'
    # included (their records are all inside the window or all outside it, so no raw row is read).
    assert len(overview_queries) > 0
    assert len(queries) == 2 < len(own_queries)
    assert reused.rows == queried.rows
    assert reused.series == queried.series
    assert reused.uncosted == queried.uncosted
    assert sum(reused.uncosted) == 16  # m7's two records of the last 24 hours, 8 requests each


def test_a_deleted_models_spend_counts_in_the_rest() -> None:
    now = timezone.now()
    kept = RegisteredModelFactory(name="kept")
    gone = RegisteredModelFactory(name="gone")
    ModelUsageFactory(model=kept, timestamp=now - timedelta(hours=2), cost=Decimal("1"))
    ModelUsageFactory(model=gone, timestamp=now - timedelta(hours=2), cost=Decimal("5"))
    gone.delete()  # its usage stays, without a model

    for spend in (spend_overview(spend_range="7d", now=now), spend_overview(usage=usage_overview(now=now))):
        assert [row["model_name"] for row in spend.rows] == ["kept", "the rest (1 model)"]
        assert spend.rows[1]["cost"] == Decimal(5)
        assert sum(value or 0 for value in spend.series[1].values) == 5.0


def test_spend_overview_ranges_use_hours_then_days() -> None:
    now = timezone.now()
    assert len(spend_overview(spend_range="7d", now=now).labels) == 7 * 24 + 1
    assert len(spend_overview(spend_range="30d", now=now).labels) == 31
    assert spend_overview(spend_range="nonsense", now=now).range == "24h"


def test_the_dashboard_charts_spend_by_model_with_a_range_switch(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="spender")
    now = timezone.now()
    ModelUsageFactory(model=model, timestamp=now - timedelta(days=3), cost=Decimal("4"), request_count=1500)
    ModelUsageFactory(model=model, timestamp=now - timedelta(hours=1), cost=None, request_count=916)
    client = staff["viewer"]

    day = client.get("/admin/").content.decode()
    week = client.get("/admin/", {"spend": "7d"}).content.decode()

    assert 'id="panel-spend"' in day
    assert 'href="?spend=7d#panel-spend" class=""' in day
    assert "spender (cost unknown)</li>" in day  # its legend: no bar in the last 24 hours, and why
    assert "spender (cost unknown)" not in week
    day_table = day.split('id="spend-models"')[1].split("</table>")[0]
    assert "unknown (916 requests uncosted)" in day_table
    week_table = week.split('id="spend-models"')[1].split("</table>")[0]
    assert "4.0000 + 916 requests uncosted" in week_table
    assert "2,416" in week_table
    assert 'href="?spend=7d#panel-spend" class="selected"' in week


def test_the_dashboard_prints_tokens_with_separators_and_error_rate_in_percent(staff: dict[str, Client]) -> None:
    model = RegisteredModelFactory(name="busy")
    ModelUsageFactory(model=model, request_count=2000, error_count=50, token_count=1234567)

    table = staff["viewer"].get("/admin/").content.decode().split('id="top-models"')[1].split("</table>")[0]

    assert "1,234,567" in table
    assert "2,000" in table
    assert "2.50 %" in table


def test_the_dashboard_spend_panel_keeps_its_queries_bounded(staff: dict[str, Client]) -> None:
    now = timezone.now()
    for index in range(12):
        model = RegisteredModelFactory(name=f"busy-{index}")
        for hours in range(0, 24, 4):
            ModelUsageFactory(model=model, timestamp=now - timedelta(hours=hours), cost=Decimal("0.1"))
    client = staff["viewer"]
    client.get("/admin/")

    with CaptureQueriesContext(connection) as few:
        client.get("/admin/", {"spend": "30d"})
    RegisteredModelFactory.create_batch(10)
    with CaptureQueriesContext(connection) as more:
        client.get("/admin/", {"spend": "30d"})

    assert len(more) == len(few)


def test_figures_print_separators_and_percent() -> None:
    assert count_text(1234567) == "1,234,567"
    assert count_text(None) == "-"
    assert percent_text(0.0205) == "2.05 %"
    assert percent_text(0.27) == "27.0 %"
    assert percent_text(None) == "-"


def test_a_cost_chart_of_only_uncosted_requests_is_drawn_not_empty() -> None:
    chart = stacked_bar_chart(title="Spend", labels=["a", "b"], series=[], empty="nothing", uncosted=[0, 916])

    assert "nothing" not in chart
    assert 'class="uncosted"' in chart
    assert "b: cost unknown for 916 requests uncosted" in chart


def test_sparklines_share_a_row_scale_and_leave_gaps() -> None:
    small = sparkline(title="a", values=[1.0, None, 1.0], top=10.0)
    large = sparkline(title="b", values=[10.0, 10.0, 10.0], top=10.0)

    assert small.count("<circle") == 2  # two lone points around the gap
    assert 'points="0.0,2.0 66.0,2.0 132.0,2.0"' in large  # the top of the shared scale
    assert "no data" in sparkline(title="c", values=[None, None], top=1.0)


def test_the_usage_list_prints_counts_with_separators(staff: dict[str, Client]) -> None:
    ModelUsageFactory(request_count=2000, token_count=1234567, error_count=1500)

    page = staff["viewer"].get("/admin/registry/modelusage/").content.decode()

    assert "1,234,567" in page
    assert "2,000" in page
    assert "1,500" in page
