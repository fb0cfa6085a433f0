// The page's connection to /v1/events/openstack on its own origin.
//
// It reconnects by itself with a growing delay (from RETRY_FIRST_MS,
// doubling up to RETRY_MAX_MS, with some jitter so that many pages do not
// come back at the same instant) and resumes after the last event it
// received: the resume point and the filters go into the URL of every
// connection, so the server replays what was missed before anything live.
// When the server cannot replay (it does not have that event any more), it
// says so with a gap frame, which is passed on so the page can say so too.
//
// A browser is not told why a WebSocket upgrade failed: a 401 for a missing
// read token and an API that is down both end in a close before the open.
// After such a failure the page asks GET ui/access whether a token is
// needed and whether the one it has is accepted.

import { setFiltersFrame, streamUrl } from "./filters.js";

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;
// A connection that lasted this long was a good one: the next failure
// starts the back-off from the beginning. (A server that accepts and closes
// at once, having no room for another client, keeps backing off.)
const GOOD_CONNECTION_MS = 5000;
const TOKEN_KEY = "osism-events-read-token";

/** The read token, for this tab's session only (sessionStorage; memory if
 * the browser refuses storage). */
export class TokenStore {
  constructor() {
    this.memory = null;
  }

  get() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) ?? this.memory;
    } catch {
      return this.memory;
    }
  }

  set(token) {
    this.memory = token;
    try {
      if (token === null) {
        window.sessionStorage.removeItem(TOKEN_KEY);
      } else {
        window.sessionStorage.setItem(TOKEN_KEY, token);
      }
    } catch {
      // Storage refused (a privacy setting): the token lives in memory only.
    }
  }
}

export function retryDelay(attempt, random = Math.random) {
  const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
  return Math.round(delay * (0.8 + 0.4 * random()));
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export class EventStream {
  /**
   * handlers: event(event), heartbeat(event), state(state, detail),
   * filtersApplied(frame), resumed(frame), gap(frame), error(message).
   * States: "connecting", "live", "reconnecting" (detail: seconds until the
   * next attempt), "token" (detail: why a token is asked for).
   */
  constructor(pageUrl, filters, handlers, tokens = new TokenStore()) {
    this.pageUrl = pageUrl;
    this.filters = filters;
    this.handlers = handlers;
    this.tokens = tokens;
    this.socket = null;
    this.lastEventId = null;
    this.attempt = 0;
    this.retryTimer = null;
    // set_filters frames sent on this connection and not answered yet: a
    // filter_update answering one of them means "the new view starts here".
    // (The filter_update of the filters given on connecting is not one.)
    this.filterRepliesAwaited = 0;
  }

  start() {
    this.connect();
  }

  connect() {
    this.retryTimer = null;
    this.handlers.state("connecting");
    const filtersOnConnecting = this.filters;
    const url = streamUrl(this.pageUrl, filtersOnConnecting, this.lastEventId, this.tokens.get());
    const socket = new WebSocket(url);
    this.socket = socket;
    this.filterRepliesAwaited = 0;
    let openedAt = null;
    socket.addEventListener("open", () => {
      openedAt = Date.now();
      this.handlers.state("live");
      if (this.filters !== filtersOnConnecting) {
        // Changed while this connection was being made.
        this.setFilters(this.filters);
      }
    });
    socket.addEventListener("message", (message) => {
      if (this.socket === socket) {
        this.receive(message.data);
      }
    });
    socket.addEventListener("close", (close) => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      if (openedAt !== null) {
        if (Date.now() - openedAt >= GOOD_CONNECTION_MS) {
          this.attempt = 0;
        }
        this.retry(close.reason);
      } else {
        this.afterRefusal();
      }
    });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!isObject(frame)) {
      return;
    }
    if (typeof frame.event_type === "string" && !("type" in frame)) {
      if (frame.event_type === "heartbeat" && frame.source === "osism") {
        this.handlers.heartbeat(frame);
        return;
      }
      if (typeof frame.id === "string") {
        this.lastEventId = frame.id;
      }
      this.handlers.event(frame);
      return;
    }
    switch (frame.type) {
      case "filter_update":
        if (this.filterRepliesAwaited > 0) {
          this.filterRepliesAwaited -= 1;
          this.handlers.filtersApplied(frame);
        }
        break;
      case "resume":
        this.handlers.resumed(frame);
        break;
      case "gap":
        this.handlers.gap(frame);
        break;
      case "error":
        if (this.filterRepliesAwaited > 0) {
          this.filterRepliesAwaited -= 1;
        }
        this.handlers.error(String(frame.message));
        break;
      default:
        break;
    }
  }

  /** Use these filters from now on: sent to the server at once when
   * connected (the reply calls filtersApplied), else given on connecting.
   * True if they were sent. */
  setFilters(filters) {
    this.filters = filters;
    if (this.socket !== null && this.socket.readyState === WebSocket.OPEN) {
      this.filterRepliesAwaited += 1;
      this.socket.send(JSON.stringify(setFiltersFrame(filters)));
      return true;
    }
    return false;
  }

  useToken(token) {
    this.tokens.set(token);
    this.attempt = 0;
    if (this.socket === null && this.retryTimer === null) {
      this.connect();
    }
  }

  retry(reason) {
    const delay = retryDelay(this.attempt);
    this.attempt += 1;
    this.handlers.state("reconnecting", { seconds: delay / 1000, reason });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  async afterRefusal() {
    const token = this.tokens.get();
    let access = null;
    try {
      const response = await fetch(new URL("ui/access", this.pageUrl), {
        cache: "no-store",
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
      access = response.ok ? await response.json() : null;
    } catch {
      access = null; // the API is not there (restarting): try again
    }
    if (isObject(access) && access.token_required && !access.token_accepted) {
      if (token) {
        this.tokens.set(null);
      }
      this.handlers.state("token", {
        reason: token ? "The token was not accepted." : "This stream needs a read token.",
      });
      return;
    }
    this.retry("");
  }
}
