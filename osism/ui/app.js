// The events page: wires the controls, the list and the connection.
//
// Everything from the server is shown as text (textContent); nothing here
// builds markup from data. No inline code either: the page's
// Content-Security-Policy allows scripts and styles from its origin only.

import { EventStream } from "./connection.js";
import { EventList } from "./event_list.js";
import {
  DEFAULT_MAX_ROWS,
  clampRows,
  describeFilters,
  filtersFromUrl,
  hasFilters,
  maxRowsFromUrl,
  noFilters,
  parseValues,
  viewUrl,
} from "./filters.js";

// The rate is the events of the last RATE_WINDOW_S seconds over that time.
const RATE_WINDOW_S = 5;
// Notices kept on the page at most (the oldest go first); a passing one
// (not a gap or an error) goes by itself after NOTICE_MS.
const MAX_NOTICES = 5;
const NOTICE_MS = 8000;

const element = (id) => document.getElementById(id);

const ui = {
  connection: element("connection"),
  received: element("received"),
  rate: element("rate"),
  heartbeat: element("heartbeat"),
  shown: element("shown"),
  filterForm: element("filters"),
  filterInputs: {
    service: element("filter-service"),
    node: element("filter-node"),
    event: element("filter-event"),
  },
  clearFilters: element("clear-filters"),
  pause: element("pause"),
  held: element("held"),
  maxRows: element("max-rows"),
  clearRows: element("clear-rows"),
  tokenForm: element("token-form"),
  tokenReason: element("token-reason"),
  token: element("token"),
  notices: element("notices"),
  rows: element("rows"),
  empty: element("empty"),
  details: element("details"),
  detailsJson: element("details-json"),
  closeDetails: element("close-details"),
};

const stats = {
  received: 0,
  // Events per second of the last RATE_WINDOW_S seconds: second -> count.
  perSecond: new Map(),
  lastHeartbeat: null,
};

function notice(message, { kind = "info", lasting = false } = {}) {
  const item = document.createElement("p");
  item.className = `notice ${kind}`;
  const words = document.createElement("span");
  words.textContent = message;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => item.remove());
  item.append(words, dismiss);
  ui.notices.append(item);
  while (ui.notices.children.length > MAX_NOTICES) {
    ui.notices.firstElementChild.remove();
  }
  if (!lasting) {
    setTimeout(() => item.remove(), NOTICE_MS);
  }
}

// ----------------------------------------------------------------- the list

function showDetails(event) {
  ui.detailsJson.textContent = JSON.stringify(event, null, 2);
  ui.details.hidden = false;
  document.body.classList.add("with-details");
}

function hideDetails() {
  ui.details.hidden = true;
  document.body.classList.remove("with-details");
}

function showCounts() {
  ui.shown.textContent = String(list.rowCount);
  ui.empty.hidden = list.rowCount > 0;
  ui.pause.textContent = list.paused ? "Resume" : "Pause";
  ui.pause.setAttribute("aria-pressed", String(list.paused));
  ui.held.hidden = !list.paused;
  ui.held.textContent = `Paused: ${list.heldEvents} new event${list.heldEvents === 1 ? "" : "s"}`;
}

const pageUrl = new URL(window.location.href);
let filters = filtersFromUrl(pageUrl);
const list = new EventList(ui.rows, {
  maxRows: maxRowsFromUrl(pageUrl),
  onSelect: showDetails,
  onChange() {
    showCounts();
    // The counters follow a burst at once, not only on the next tick.
    showStats();
  },
});

// ------------------------------------------------------------ the connection

const STATE_TEXT = {
  connecting: () => "connecting",
  live: () => "live",
  reconnecting: ({ seconds, reason }) =>
    `reconnecting in ${seconds.toFixed(1)} s${reason ? ` (${reason})` : ""}`,
  token: () => "read token needed",
};

const stream = new EventStream(document.baseURI, filters, {
  event(event) {
    if (list.addEvent(event)) {
      stats.received += 1;
      const second = Math.floor(Date.now() / 1000);
      stats.perSecond.set(second, (stats.perSecond.get(second) ?? 0) + 1);
    }
  },
  heartbeat() {
    stats.lastHeartbeat = Date.now();
    showLiveness();
  },
  state(state, detail = {}) {
    ui.connection.dataset.state = state;
    ui.connection.textContent = STATE_TEXT[state](detail);
    ui.tokenForm.hidden = state !== "token";
    if (state === "token") {
      ui.tokenReason.textContent = detail.reason;
      ui.token.focus();
    }
  },
  filtersApplied() {
    // Frames are in order: everything before this reply was sent under the
    // old filters, everything after it under the new ones.
    list.clear();
    if (hasFilters(filters)) {
      // The server sends no heartbeats to a filtered view: an old one would
      // only grow older.
      stats.lastHeartbeat = null;
    }
    notice(`Showing ${describeFilters(filters)}.`);
  },
  resumed(frame) {
    const replayed = Number(frame.replayed) || 0;
    notice(`Reconnected: ${replayed} missed event${replayed === 1 ? "" : "s"} replayed.`);
  },
  gap(frame) {
    const message = String(frame.message ?? "");
    list.addGap(message);
    notice(`Reconnected, but events may be missing: ${message}`, {
      kind: "gap",
      lasting: true,
    });
  },
  error(message) {
    notice(`The server says: ${message}`, { kind: "error", lasting: true });
  },
});

// -------------------------------------------------------------- the controls

function showFilters() {
  for (const [key, input] of Object.entries(ui.filterInputs)) {
    input.value = filters[key].join(", ");
  }
}

function rememberView() {
  const url = viewUrl(window.location.href, filters, list.maxRows);
  window.history.replaceState(null, "", url);
}

function applyFilters(next) {
  filters = next;
  showFilters();
  rememberView();
  if (!stream.setFilters(filters)) {
    // Not connected: the next connection starts with these filters.
    list.clear();
  }
}

ui.filterForm.addEventListener("submit", (submit) => {
  submit.preventDefault();
  const next = noFilters();
  for (const [key, input] of Object.entries(ui.filterInputs)) {
    next[key] = parseValues(input.value);
  }
  applyFilters(next);
});

ui.clearFilters.addEventListener("click", () => applyFilters(noFilters()));

ui.pause.addEventListener("click", () => list.setPaused(!list.paused));

ui.maxRows.addEventListener("change", () => {
  const rows = clampRows(ui.maxRows.value);
  ui.maxRows.value = String(rows);
  list.setMaxRows(rows);
  rememberView();
});

ui.clearRows.addEventListener("click", () => list.clear());

ui.closeDetails.addEventListener("click", hideDetails);

ui.tokenForm.addEventListener("submit", (submit) => {
  submit.preventDefault();
  const token = ui.token.value;
  ui.token.value = "";
  if (token) {
    stream.useToken(token);
  }
});

// -------------------------------------------------------- counters, liveness

function showLiveness() {
  if (stats.lastHeartbeat === null) {
    ui.heartbeat.textContent = hasFilters(filters) ? "none (filtered view)" : "none yet";
    return;
  }
  const seconds = Math.round((Date.now() - stats.lastHeartbeat) / 1000);
  ui.heartbeat.textContent = seconds < 1 ? "just now" : `${seconds} s ago`;
}

function showStats() {
  ui.received.textContent = stats.received.toLocaleString("en");
  const now = Math.floor(Date.now() / 1000);
  let recent = 0;
  for (const [second, count] of stats.perSecond) {
    if (second <= now - RATE_WINDOW_S) {
      stats.perSecond.delete(second);
    } else {
      recent += count;
    }
  }
  ui.rate.textContent = (recent / RATE_WINDOW_S).toFixed(1);
  showLiveness();
}

setInterval(showStats, 1000);

ui.maxRows.value = String(list.maxRows ?? DEFAULT_MAX_ROWS);
showFilters();
showCounts();
stream.start();
