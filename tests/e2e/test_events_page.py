"""The events page in a real browser (headless Chromium, driven by
Playwright) against a real API server (``osism service api`` under uvicorn).

Events are posted to ``POST /v1/events`` (or published on the server's
Redis channel, where a test needs many or needs values the ingest refuses)
and looked for in the page as a user would see them.
"""

import json
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest
from playwright.sync_api import expect

from tests.e2e.events_page import RECONNECT_DEADLINE, WITHIN_A_SECOND
from tests.e2e.tcp_proxy import CuttableProxy
from tests.samples.openstack import SAMPLES

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "docs" / "ui.png"


# --------------------------------------------------------------------------
# Notifications, each about a resource id unique to the test


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ironic_node_event(node: str, resource_id: str) -> Dict[str, Any]:
    return {
        "event_type": "baremetal.node.power_set.end",
        "payload": {"ironic_object.data": {"name": node, "uuid": resource_id}},
    }


def nova_instance_event(host: str, resource_id: str) -> Dict[str, Any]:
    return {
        "event_type": "instance.power_off.end",
        "publisher_id": f"nova-compute:{host}",
        "payload": {"nova_object.data": {"host": host, "uuid": resource_id}},
    }


def neutron_port_event(host: str, resource_id: str) -> Dict[str, Any]:
    return {
        "event_type": "port.create.end",
        "publisher_id": f"network.{host}",
        "payload": {"port": {"id": resource_id, "binding:host_id": host}},
    }


def post(server, notification: Dict[str, Any]) -> None:
    """POST a notification (event_type, payload, publisher_id) to the API."""
    fields = dict(notification)
    status, body = server.post_event(
        fields.pop("event_type"), fields.pop("payload"), **fields
    )
    assert status == 202, body


def publish(redis_server, channel: str, notifications: List[Dict[str, Any]]) -> None:
    """Publish notifications on a Redis channel as the listener does (the
    bridge's wire format), in one round trip."""
    with redis_server.client() as client:
        pipeline = client.pipeline(transaction=False)
        for notification in notifications:
            pipeline.publish(channel, json.dumps(notification))
        pipeline.execute()


# --------------------------------------------------------------------------
# 1. Live events, one row each, newest on top


@pytest.mark.timeout(30)
def test_posted_events_appear_within_a_second_newest_on_top(api_server, open_page):
    server = api_server("embedded")
    page = open_page(server.base_url)
    node, host, port_host = unique("node"), unique("host"), unique("net")
    events = [
        (ironic_node_event(node, unique("ironic")), "baremetal", node),
        (nova_instance_event(host, unique("nova")), "compute", host),
        (neutron_port_event(port_host, unique("port")), "network", port_host),
    ]

    for notification, _, _ in events:
        post(server, notification)
        page.expect_row(resource_of(notification), timeout=WITHIN_A_SECOND)

    page.expect_resource_ids([resource_of(n) for n, _, _ in reversed(events)])
    for notification, service, node_name in events:
        time_text, *cells = page.row_cells(resource_of(notification))
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", time_text), time_text
        assert cells == [
            service,
            notification["event_type"],
            node_name,
            resource_of(notification),
        ]
    expect(page.page.locator("#received")).to_have_text("3")
    # Three events within the last 5 s: at least 0.6 a second.
    expect(page.page.locator("#rate")).to_have_text(re.compile(r"^(0\.[6-9]|[1-9])"))


def resource_of(notification: Dict[str, Any]) -> str:
    payload = notification["payload"]
    if "port" in payload:
        return str(payload["port"]["id"])
    (data,) = payload.values()
    return str(data["uuid"])


@pytest.mark.timeout(30)
def test_a_click_or_enter_on_a_row_shows_the_whole_event_as_json(api_server, open_page):
    server = api_server("embedded")
    page = open_page(server.base_url)
    first, second = unique("ironic"), unique("ironic")
    post(server, ironic_node_event("node1", first))
    post(server, ironic_node_event("node2", second))
    page.expect_row(second)

    page.row(first).locator("td:nth-child(3)").click()
    shown = page.details()

    assert set(shown) == {
        "id",
        "timestamp",
        "event_type",
        "source",
        "node_name",
        "data",
    }
    assert shown["node_name"] == "node1"
    assert shown["data"]["resource_id"] == first
    assert shown["data"]["ironic_object.data"] == {"name": "node1", "uuid": first}

    page.row(second).get_by_role("button").focus()
    page.page.keyboard.press("Enter")
    expect(page.page.locator("#details-json")).to_contain_text(second)


@pytest.mark.timeout(30)
def test_the_heartbeat_shows_as_liveness_not_as_a_row(api_server, open_page):
    server = api_server("embedded", heartbeat_interval=0.2)
    page = open_page(server.base_url)

    expect(page.page.locator("#heartbeat")).to_have_text(
        re.compile(r"just now|\d+ s ago"), timeout=5_000
    )
    post(server, ironic_node_event("node1", unique("ironic")))

    expect(page.rows).to_have_count(1, timeout=WITHIN_A_SECOND)
    expect(page.page.locator("#received")).to_have_text("1")


# --------------------------------------------------------------------------
# 1. Filters, applied by the server and kept in the address


@pytest.mark.timeout(30)
def test_a_service_filter_shows_only_that_service(api_server, open_page):
    server = api_server("embedded")
    page = open_page(server.base_url)
    page.page.get_by_label("Service", exact=True).fill("compute")
    page.page.get_by_role("button", name="Apply filters").click()
    expect(page.page).to_have_url(re.compile(r"/ui\?service=compute$"))
    expect(page.notices.filter(has_text="Showing service compute")).to_have_count(1)

    ironic_ids = [unique("ironic"), unique("ironic")]
    nova_ids = [unique("nova"), unique("nova")]
    for ironic_id, nova_id in zip(ironic_ids, nova_ids):
        post(server, ironic_node_event("node1", ironic_id))
        post(server, nova_instance_event("compute1", nova_id))

    # Frames arrive in order: once the last compute event is listed, an
    # ironic event let through would be listed too.
    page.expect_resource_ids(list(reversed(nova_ids)))
    # Filtered by the server, not hidden by the page: it never received them.
    expect(page.page.locator("#received")).to_have_text("2")


@pytest.mark.timeout(30)
def test_filters_in_the_address_apply_when_the_page_opens(api_server, open_page):
    server = api_server("embedded")
    node = unique("node")
    page = open_page(server.base_url, f"/ui?service=ironic&node={node}")
    expect(page.page.get_by_label("Service", exact=True)).to_have_value("ironic")
    expect(page.page.get_by_label("Node", exact=True)).to_have_value(node)

    other_node, compute, wanted = unique("ironic"), unique("nova"), unique("ironic")
    post(server, ironic_node_event("elsewhere", other_node))
    post(server, nova_instance_event(node, compute))
    post(server, ironic_node_event(node, wanted))

    page.expect_resource_ids([wanted])
    expect(page.page.locator("#received")).to_have_text("1")


# --------------------------------------------------------------------------
# 1. Pause and resume


@pytest.mark.timeout(30)
def test_pause_counts_new_events_and_resume_shows_them(api_server, open_page):
    server = api_server("embedded")
    page = open_page(server.base_url)
    before = unique("before")
    post(server, ironic_node_event("node1", before))
    page.expect_row(before)

    pause = page.page.get_by_role("button", name="Pause")
    pause.click()
    expect(page.page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    held = [unique("held") for _ in range(3)]
    for resource_id in held:
        post(server, ironic_node_event("node1", resource_id))

    expect(page.page.locator("#held")).to_have_text("Paused: 3 new events")
    expect(page.page.locator("#received")).to_have_text("4")
    page.expect_resource_ids([before])

    page.page.get_by_role("button", name="Resume").click()

    page.expect_resource_ids(list(reversed(held)) + [before])
    expect(page.page.locator("#held")).to_be_hidden()


# --------------------------------------------------------------------------
# 2. Reconnecting and resuming


@pytest.mark.timeout(60)
def test_a_dropped_connection_resumes_after_the_last_event_shown(api_server, open_page):
    """The network goes away while the API runs on: what was posted
    meanwhile is replayed from the API's history when the page is back."""
    server = api_server("embedded")
    proxy = CuttableProxy(server.port)
    try:
        page = open_page(proxy.base_url)
        shown = unique("shown")
        post(server, ironic_node_event("node1", shown))
        page.expect_row(shown)

        proxy.cut()
        expect(page.connection).not_to_have_attribute("data-state", "live")
        missed = [unique("missed") for _ in range(3)]
        for resource_id in missed:
            post(server, ironic_node_event("node1", resource_id))
        proxy.mend()

        page.expect_live(timeout=RECONNECT_DEADLINE)
        page.expect_resource_ids(list(reversed(missed)) + [shown])
        expect(page.notices.filter(has_text="3 missed events replayed")).to_have_count(
            1
        )
        expect(page.gap_rows).to_have_count(0)
        assert any("last_event_id=" in url for url in page.websockets[1:])
    finally:
        proxy.close()


@pytest.mark.redis
@pytest.mark.timeout(90)
def test_after_an_api_restart_every_event_is_listed_or_the_gap_is_reported(
    api_server, open_page
):
    """The API restarts; events posted while it is down (to a second API on
    the same Redis channel) are either replayed or the page says that events
    may be missing, and everything posted after the restart is listed.

    Today an API's history lives in its own process, so the restarted one
    cannot replay and answers with a gap; with a history kept in Redis it
    will replay instead. The page's promise holds either way: no event goes
    missing without the page saying so.
    """
    first = api_server("redis")
    page = open_page(first.base_url)
    before = unique("before")
    post(first, ironic_node_event("node1", before))
    page.expect_row(before)

    first.stop()
    expect(page.connection).not_to_have_attribute("data-state", "live")
    other = api_server("redis", channel=first.channel)
    while_down = unique("down")
    post(other, ironic_node_event("node1", while_down))
    restarted = api_server("redis", port=first.port, channel=first.channel)

    page.expect_live(timeout=RECONNECT_DEADLINE)
    after = unique("after")
    post(restarted, ironic_node_event("node1", after))

    page.expect_row(after)
    page.expect_row(before, timeout=0)
    listed = page.row(while_down).count() == 1
    gap_reported = (
        page.gap_rows.count() == 1
        and page.notices.filter(has_text="events may be missing").count() == 1
    )
    assert listed or gap_reported, (
        "an event posted while the API was down is neither listed nor reported "
        "as possibly missing"
    )


# --------------------------------------------------------------------------
# 3. Safe


HOSTILE = '<img src="/x-hostile" onerror="window.hostileRan=1">'
SCRIPT = "<script>window.hostileRan=2</script>"


@pytest.mark.redis
@pytest.mark.timeout(30)
def test_html_in_an_event_is_shown_as_text_and_never_run(
    api_server, redis_server, open_page
):
    # The ingest refuses markup in an event type; the listener's path (Redis)
    # takes any string, so that is the way in for this event.
    server = api_server("redis")
    page = open_page(server.base_url)
    resource_id = f"{SCRIPT}{unique('res')}"
    publish(
        redis_server,
        server.channel,
        [
            {
                "event_type": f"baremetal.node.{HOSTILE}",
                "payload": {
                    "ironic_object.data": {"name": SCRIPT, "uuid": resource_id},
                    "note": HOSTILE,
                },
            }
        ],
    )

    page.expect_row(resource_id)
    cells = page.row_cells(resource_id)[1:]
    assert cells == ["baremetal", f"baremetal.node.{HOSTILE}", SCRIPT, resource_id]
    page.row(resource_id).locator("td:nth-child(3)").click()
    assert page.details()["data"]["note"] == HOSTILE
    # Nothing of it became markup, ran, or was fetched.
    expect(page.page.locator("main img, main script")).to_have_count(0)
    assert page.page.evaluate("() => window.hostileRan") is None
    assert not [url for url in page.requests if "x-hostile" in url]


@pytest.mark.timeout(30)
def test_no_request_leaves_the_pages_origin(api_server, open_page):
    server = api_server("embedded", heartbeat_interval=0.2)
    page = open_page(server.base_url, "/")
    resource_id = unique("ironic")
    post(server, ironic_node_event("node1", resource_id))
    page.expect_row(resource_id)
    page.row(resource_id).locator("td:nth-child(2)").click()
    page.page.get_by_label("Node", exact=True).fill("node1")
    page.page.get_by_role("button", name="Apply filters").click()
    expect(page.notices.filter(has_text="Showing node node1")).to_have_count(1)

    assert page.websockets, "the page opened no WebSocket"
    assert len(page.requests) >= 5, page.requests  # page, script modules, style
    assert page.foreign_requests() == []


@pytest.mark.timeout(45)
def test_a_read_token_is_asked_for_once_and_kept_for_the_session_only(
    api_server, open_page
):
    server = api_server("embedded", env={"EVENTS_READ_TOKEN": "s3cret-token"})
    page = open_page(server.base_url, wait_live=False)
    token_form = page.page.locator("#token-form")
    expect(token_form).to_be_visible(timeout=10_000)
    expect(token_form).to_contain_text("needs a read token")

    page.page.get_by_label("Token", exact=True).fill("wrong")
    page.page.get_by_role("button", name="Connect").click()
    expect(token_form).to_contain_text("was not accepted", timeout=10_000)
    page.page.get_by_label("Token", exact=True).fill("s3cret-token")
    page.page.get_by_role("button", name="Connect").click()
    page.expect_live()
    resource_id = unique("ironic")
    post(server, ironic_node_event("node1", resource_id))
    page.expect_row(resource_id)

    # Asked once: a reload in the same tab connects without asking.
    page.page.reload()
    page.expect_live()
    expect(token_form).to_be_hidden()
    # Never in the page's address; only on the WebSocket URL.
    assert "s3cret" not in page.page.url
    assert [url for url in page.requests if "s3cret" in url] == []
    assert "token=s3cret-token" in page.websockets[-1]
    # For the session only: another session (a new context) asks again.
    other = open_page(server.base_url, wait_live=False)
    expect(other.page.locator("#token-form")).to_be_visible(timeout=10_000)


# --------------------------------------------------------------------------
# 1. Bounded


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_ten_thousand_events_keep_the_row_count_at_its_bound(
    api_server, redis_server, open_page
):
    server = api_server("redis")
    page = open_page(server.base_url)
    cdp = page.context.new_cdp_session(page.page)
    run = uuid.uuid4().hex[:6]
    measured: Dict[int, Dict[str, int]] = {}

    for chunk in range(10):
        notifications = [
            ironic_node_event(f"node{i % 7}", f"{run}-{i}")
            for i in range(chunk * 1000, (chunk + 1) * 1000)
        ]
        publish(redis_server, server.channel, notifications)
        total = (chunk + 1) * 1000
        expect(page.page.locator("#received")).to_have_text(
            f"{total:,}", timeout=15_000
        )
        expect(page.rows.first.locator("td:nth-child(5)")).to_have_text(
            f"{run}-{total - 1}", timeout=5_000
        )
        expect(page.rows).to_have_count(1000)
        if total in (2000, 10000):
            measured[total] = memory(cdp)

    expect(page.page.locator("#shown")).to_have_text("1000")
    # Flat: 8,000 more events left no more DOM nodes and no more heap behind.
    assert measured[10000]["nodes"] <= measured[2000]["nodes"] + 50, measured
    assert measured[10000]["heap"] <= measured[2000]["heap"] + 1_000_000, measured


def memory(cdp) -> Dict[str, int]:
    """DOM nodes and JavaScript heap in use, after a garbage collection."""
    cdp.send("HeapProfiler.collectGarbage")
    return {
        "nodes": int(cdp.send("Memory.getDOMCounters")["nodes"]),
        "heap": int(cdp.send("Runtime.getHeapUsage")["usedSize"]),
    }


@pytest.mark.timeout(30)
def test_rows_kept_bounds_the_list_and_comes_from_the_address(api_server, open_page):
    server = api_server("embedded")
    page = open_page(server.base_url, "/ui?rows=10")
    expect(page.page.get_by_label("Rows kept", exact=True)).to_have_value("10")
    posted = [unique("ironic") for _ in range(15)]
    for resource_id in posted:
        post(server, ironic_node_event("node1", resource_id))

    page.expect_resource_ids(list(reversed(posted))[:10])
    expect(page.page.locator("#received")).to_have_text("15")
    expect(page.page.locator("#shown")).to_have_text("10")


# --------------------------------------------------------------------------
# 4. Usable


CONTROLS = [
    ("combobox", "Service"),  # a text field with suggestions
    ("textbox", "Node"),
    ("textbox", "Event type"),
    ("button", "Apply filters"),
    ("button", "Clear filters"),
    ("button", "Pause"),
    ("spinbutton", "Rows kept"),
    ("button", "Clear list"),
]


@pytest.mark.timeout(30)
def test_every_control_has_a_label_and_is_reached_with_the_tab_key(
    api_server, open_page
):
    server = api_server("embedded")
    page = open_page(server.base_url)
    resource_id = unique("ironic")
    post(server, ironic_node_event("node1", resource_id))
    page.expect_row(resource_id)

    focused = page.page.locator(":focus")
    for role, name in CONTROLS + [("button", "Show event")]:
        page.page.keyboard.press("Tab")
        expect(focused).to_have_role(role)
        expect(focused).to_have_accessible_name(re.compile("^" + name))

    # The row's button opens the details; Rows kept applies from the keyboard.
    page.page.keyboard.press("Enter")
    expect(page.page.locator("#details-json")).to_contain_text(resource_id)
    rows_kept = page.page.get_by_label("Rows kept", exact=True)
    rows_kept.fill("20")
    rows_kept.press("Enter")
    expect(page.page).to_have_url(re.compile(r"[?&]rows=20$"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_fits_the_window_without_sideways_scrolling(
    api_server, open_page, width
):
    server = api_server("embedded")
    page = open_page(server.base_url, viewport={"width": width, "height": 800})
    long_name = "a-rather-long-node-name-of-a-bare-metal-server-in-rack-42"
    resource_id = unique("ironic-" + "x" * 40)
    post(server, ironic_node_event(long_name, resource_id))
    page.expect_row(resource_id)
    page.row(resource_id).locator("td:nth-child(2)").click()
    page.details()

    assert page.page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
    )
    expect(page.row(resource_id)).to_be_in_viewport()
    expect(page.page.get_by_role("button", name="Pause")).to_be_in_viewport()


@pytest.mark.timeout(30)
def test_light_and_dark_follow_the_system_setting(api_server, open_page):
    server = api_server("embedded")
    backgrounds = {}
    for scheme in ("light", "dark"):
        page = open_page(server.base_url, color_scheme=scheme)
        backgrounds[scheme] = luminance(
            page.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        )

    assert backgrounds["light"] > 0.9
    assert backgrounds["dark"] < 0.1


def luminance(css_color: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


# --------------------------------------------------------------------------
# Acceptance: README's run command, and the screenshot in docs/


@pytest.mark.readme
@pytest.mark.timeout(90)
def test_the_url_scripts_serve_prints_shows_posted_events(api_server, open_page):
    server = api_server("default", launch="serve")
    printed = re.search(r"The events page: (http://\S+)", server.output())
    assert printed, server.output()
    page = open_page(printed.group(1), "")

    resource_id = unique("ironic")
    post(server, ironic_node_event("node1", resource_id))

    page.expect_row(resource_id)


@pytest.mark.timeout(45)
def test_the_screenshot_in_docs_shows_events_of_several_services(api_server, open_page):
    """Writes docs/ui.png: the page at 1280x800 with events of every
    service, one of them opened."""
    server = api_server("embedded", heartbeat_interval=0.5)
    page = open_page(server.base_url)
    chosen = samples_of_each_service()
    for sample in chosen:
        post(server, sample.notification)
    expect(page.rows).to_have_count(len(chosen), timeout=5_000)
    services = page.page.locator("#rows tr.event td:nth-child(2)").all_inner_texts()
    assert len(set(services)) == 6, services

    page.rows.filter(has_text="baremetal").first.locator("td:nth-child(3)").click()
    page.details()
    expect(page.page.locator("#heartbeat")).to_have_text(
        re.compile(r"just now|\d s ago"), timeout=5_000
    )
    page.page.mouse.move(0, 0)  # no row under the pointer, none hovered
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.page.screenshot(path=str(SCREENSHOT))

    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def samples_of_each_service(per_service: int = 3) -> List[Any]:
    """Documented OpenStack notifications, a few of each service taken in
    turn: those that name a node first (image and identity events never
    do)."""
    by_service: Dict[str, List[Any]] = {}
    named_first = sorted(SAMPLES, key=lambda sample: sample.node_name is None)
    for sample in named_first:
        kept = by_service.setdefault(sample.service_type, [])
        if sample.resource_id is not None and len(kept) < per_service:
            kept.append(sample)
    return [
        kept[turn]
        for turn in range(per_service)
        for kept in by_service.values()
        if turn < len(kept)
    ]
