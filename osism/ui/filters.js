// The page's view settings and where they live: the filters and the row
// bound in the page's address (so a view can be bookmarked and shared), and
// the URL of the event stream they become. Pure functions, no DOM.

// Page address parameter -> the stream's filter list (query and set_filters).
export const FILTER_LISTS = {
  service: "service_filters",
  node: "node_filters",
  event: "event_filters",
};
export const ROWS_PARAMETER = "rows";
export const DEFAULT_MAX_ROWS = 1000;
export const MIN_ROWS = 10;
export const MAX_ROWS = 100000;
// The server takes at most this many characters per value; longer ones would
// only earn an error frame.
const MAX_VALUE_LENGTH = 255;

/** The values typed into a filter field: separated by commas, trimmed,
 * without empty or repeated ones. */
export function parseValues(text) {
  const values = [];
  for (const part of String(text).split(",")) {
    const value = part.trim();
    if (value && value.length <= MAX_VALUE_LENGTH && !values.includes(value)) {
      values.push(value);
    }
  }
  return values;
}

export function noFilters() {
  return { service: [], node: [], event: [] };
}

export function hasFilters(filters) {
  return Object.keys(FILTER_LISTS).some((key) => filters[key].length > 0);
}

/** The filters an address names: ?service=compute&service=network&node=n1 */
export function filtersFromUrl(url) {
  const filters = noFilters();
  for (const key of Object.keys(FILTER_LISTS)) {
    filters[key] = parseValues(url.searchParams.getAll(key).join(","));
  }
  return filters;
}

/** The row bound an address names, or the default; always within bounds. */
export function maxRowsFromUrl(url) {
  return clampRows(url.searchParams.get(ROWS_PARAMETER));
}

export function clampRows(value) {
  const rows = Number.parseInt(value, 10);
  if (!Number.isFinite(rows)) {
    return DEFAULT_MAX_ROWS;
  }
  return Math.min(MAX_ROWS, Math.max(MIN_ROWS, rows));
}

/** ``url`` with the filters and the row bound of this view (other
 * parameters are kept; the default bound is left out). */
export function viewUrl(url, filters, maxRows) {
  const next = new URL(url);
  for (const key of Object.keys(FILTER_LISTS)) {
    next.searchParams.delete(key);
    for (const value of filters[key]) {
      next.searchParams.append(key, value);
    }
  }
  next.searchParams.delete(ROWS_PARAMETER);
  if (maxRows !== DEFAULT_MAX_ROWS) {
    next.searchParams.set(ROWS_PARAMETER, String(maxRows));
  }
  return next;
}

/** The set_filters frame for these filters (empty lists clear). */
export function setFiltersFrame(filters) {
  const frame = { action: "set_filters" };
  for (const [key, list] of Object.entries(FILTER_LISTS)) {
    frame[list] = filters[key];
  }
  return frame;
}

/** The WebSocket URL of the stream on the page's own origin: the filters
 * and the resume point as query parameters, so the server applies them
 * before it sends anything (the replay first, then the live stream). A read
 * token goes here because a browser cannot set headers on a WebSocket; it
 * is never put into the page's own address. */
export function streamUrl(pageUrl, filters, lastEventId, token) {
  const url = new URL("v1/events/openstack", pageUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  for (const [key, list] of Object.entries(FILTER_LISTS)) {
    for (const value of filters[key]) {
      url.searchParams.append(list, value);
    }
  }
  if (lastEventId) {
    url.searchParams.set("last_event_id", lastEventId);
  }
  if (token) {
    url.searchParams.set("token", token);
  }
  return url.href;
}

/** "service compute, nova; node n1" for a notice. */
export function describeFilters(filters) {
  const names = { service: "service", node: "node", event: "event type" };
  const parts = Object.keys(FILTER_LISTS)
    .filter((key) => filters[key].length > 0)
    .map((key) => `${names[key]} ${filters[key].join(", ")}`);
  return parts.length ? parts.join("; ") : "all events";
}
