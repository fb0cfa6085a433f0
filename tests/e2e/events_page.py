"""The events page as a test drives it: Playwright locators for its parts and
a record of everything the page asked the network for.

Waits are Playwright's ``expect`` with explicit timeouts: a condition with a
deadline, never a sleep. (``page.wait_for_function`` cannot be used: it
evaluates a string in the page, which the page's CSP rightly refuses.)
"""

import json
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, expect

# Milliseconds within which an event posted to the API must be in the list.
WITHIN_A_SECOND = 1_000
# A reconnect: the API starting again plus the page's longest back-off step.
RECONNECT_DEADLINE = 15_000


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


class EventsPage:
    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url
        # Every URL the page requested (documents, scripts, fetches) and
        # every WebSocket it opened, in order.
        self.requests: List[str] = []
        self.websockets: List[str] = []
        # Script errors and CSP violations: the fixture fails the test on any.
        self.problems: List[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        self.page = context.new_page()
        self.page.on("websocket", lambda ws: self.websockets.append(ws.url))
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(message.text)

    def goto(self, path: str = "/ui") -> None:
        self.page.goto(self.base_url + path)

    # ----------------------------------------------------------- the parts

    @property
    def connection(self) -> Locator:
        return self.page.locator("#connection")

    @property
    def rows(self) -> Locator:
        """The event rows, newest first."""
        return self.page.locator("#rows tr.event")

    @property
    def gap_rows(self) -> Locator:
        return self.page.locator("#rows tr.gap")

    @property
    def notices(self) -> Locator:
        return self.page.locator("#notices .notice")

    def row(self, resource_id: str) -> Locator:
        """The row of the event about ``resource_id`` (unique per test)."""
        return self.rows.filter(
            has=self.page.locator("td:nth-child(5)", has_text=resource_id)
        )

    def resource_ids(self) -> List[str]:
        """The resource id column, top to bottom."""
        return self.page.locator("#rows tr.event td:nth-child(5)").all_inner_texts()

    def row_cells(self, resource_id: str) -> List[str]:
        return self.row(resource_id).locator("td").all_inner_texts()

    def details(self) -> Dict[str, Any]:
        """The event the details pane shows, parsed from its text."""
        details = self.page.locator("#details-json")
        expect(details).to_be_visible(timeout=WITHIN_A_SECOND)
        shown: Dict[str, Any] = json.loads(details.inner_text())
        return shown

    # ------------------------------------------------------------ waiting

    def expect_live(self, timeout: float = 10_000) -> None:
        expect(self.connection).to_have_attribute("data-state", "live", timeout=timeout)

    def expect_row(self, resource_id: str, timeout: float = WITHIN_A_SECOND) -> None:
        expect(self.row(resource_id)).to_have_count(1, timeout=timeout)

    def expect_resource_ids(
        self, resource_ids: List[str], timeout: float = WITHIN_A_SECOND
    ) -> None:
        """The list shows exactly these events, in this order (top first)."""
        expect(self.page.locator("#rows tr.event td:nth-child(5)")).to_have_text(
            resource_ids, timeout=timeout
        )

    # ------------------------------------------------------------- checks

    def foreign_requests(self, origin: Optional[str] = None) -> List[str]:
        """Requests and WebSockets of the page that went to another origin."""
        own = origin or origin_of(self.base_url)
        return [url for url in self.requests + self.websockets if origin_of(url) != own]
