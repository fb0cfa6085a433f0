// The list of events: newest on top, at most maxRows rows, pausable.
//
// Every value of an event is put into the page as text (textContent and
// attribute values), never parsed as markup: an event type or node name
// holding HTML or script is shown, not run.
//
// Memory stays flat however many events arrive: rows beyond the bound are
// removed, events waiting to be drawn or held while paused are cut to the
// bound as well (older ones would be pushed out at once anyway), and an
// event is reachable only from its row (a WeakMap), so it goes with it.

const COLUMNS = ["Time", "Service", "Event type", "Node", "Resource id"];
// Events are drawn in batches, at most this often: one DOM update for a burst.
const DRAW_INTERVAL_MS = 50;

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  hourCycle: "h23",
});

export function formatTime(timestamp) {
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? text(timestamp) : timeFormat.format(date);
}

function text(value) {
  if (value === null || value === undefined) {
    return "";
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function dataOf(event) {
  return event.data !== null && typeof event.data === "object" ? event.data : {};
}

/** The cells of an event's row, as text. */
export function rowValues(event) {
  const data = dataOf(event);
  return [
    formatTime(event.timestamp),
    text(data.service_type),
    text(event.event_type),
    text(event.node_name),
    text(data.resource_id),
  ];
}

/** Ids seen lately, so an event delivered twice (a replay overlapping what
 * came live) gets one row. Bounded: the oldest ids are forgotten. */
class RecentIds {
  constructor(capacity) {
    this.capacity = capacity;
    this.ids = new Set();
  }

  /** True if ``id`` is new (and remember it). */
  add(id) {
    if (this.ids.has(id)) {
      return false;
    }
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      // A Set iterates in insertion order: the first is the oldest.
      this.ids.delete(this.ids.values().next().value);
    }
    return true;
  }
}

export class EventList {
  constructor(body, { maxRows, onSelect, onChange }) {
    this.body = body;
    this.maxRows = maxRows;
    this.onSelect = onSelect;
    this.onChange = onChange;
    this.eventOfRow = new WeakMap();
    this.recentIds = new RecentIds(4 * maxRows);
    // Items received but not drawn yet, oldest first.
    this.incoming = [];
    // Items that arrived while paused, oldest first (cut to the bound), and
    // how many events that was in all.
    this.held = [];
    this.heldEvents = 0;
    this.paused = false;
    this.drawTimer = null;
    this.selectedRow = null;
    body.addEventListener("click", (click) => {
      const row = click.target.closest("tr.event");
      if (row && this.eventOfRow.has(row)) {
        this.select(row);
      }
    });
  }

  /** Add an event (one row, once drawn); false if it was here already. */
  addEvent(event) {
    if (typeof event.id === "string" && !this.recentIds.add(event.id)) {
      return false;
    }
    this.enqueue({ event });
    if (this.paused) {
      this.heldEvents += 1;
    }
    return true;
  }

  /** Mark where events may be missing (a resume the server could not do). */
  addGap(message) {
    this.enqueue({ gap: message, at: new Date() });
  }

  enqueue(item) {
    this.incoming.push(item);
    this.incoming = this.cut(this.incoming);
    if (this.drawTimer === null) {
      this.drawTimer = setTimeout(() => this.draw(), DRAW_INTERVAL_MS);
    }
  }

  /** ``items`` without those beyond the bound (the oldest). Cut in steps
   * of the bound, so that a burst costs one copy per maxRows items. */
  cut(items) {
    return items.length > 2 * this.maxRows ? items.slice(-this.maxRows) : items;
  }

  drawNow() {
    if (this.drawTimer !== null) {
      clearTimeout(this.drawTimer);
      this.draw();
    }
  }

  draw() {
    this.drawTimer = null;
    const items = this.incoming;
    this.incoming = [];
    if (this.paused) {
      this.held = this.cut(this.held.concat(items));
    } else {
      this.render(items);
    }
    this.onChange();
  }

  render(items) {
    const newest = items.slice(-this.maxRows);
    if (newest.length === 0) {
      return;
    }
    const fragment = document.createDocumentFragment();
    for (let i = newest.length - 1; i >= 0; i -= 1) {
      const item = newest[i];
      fragment.append(item.event ? this.eventRow(item.event) : gapRow(item));
    }
    this.body.prepend(fragment);
    this.trim();
  }

  trim() {
    while (this.body.rows.length > this.maxRows) {
      const row = this.body.lastElementChild;
      if (row === this.selectedRow) {
        this.selectedRow = null;
      }
      row.remove();
    }
  }

  eventRow(event) {
    const row = document.createElement("tr");
    row.className = "event";
    const values = rowValues(event);
    values.forEach((value, index) => {
      const cell = document.createElement("td");
      cell.dataset.label = COLUMNS[index];
      if (index === 0) {
        // The row's keyboard handle: a button (Enter or Space) in its first
        // cell; a click anywhere on the row does the same.
        const open = document.createElement("button");
        open.type = "button";
        open.className = "open";
        open.textContent = value;
        open.setAttribute("aria-label", `Show event ${values[2]} at ${value}`);
        cell.append(open);
        cell.title = text(event.timestamp);
      } else {
        cell.textContent = value;
      }
      row.append(cell);
    });
    this.eventOfRow.set(row, event);
    return row;
  }

  select(row) {
    if (this.selectedRow) {
      this.selectedRow.classList.remove("selected");
    }
    row.classList.add("selected");
    this.selectedRow = row;
    this.onSelect(this.eventOfRow.get(row));
  }

  setPaused(paused) {
    if (paused === this.paused) {
      return;
    }
    if (paused) {
      // What arrived before the pause is shown, not counted as held.
      this.drawNow();
    }
    this.paused = paused;
    if (!paused) {
      const held = this.held;
      this.held = [];
      this.heldEvents = 0;
      this.render(held);
    }
    this.onChange();
  }

  setMaxRows(maxRows) {
    this.maxRows = maxRows;
    this.recentIds.capacity = 4 * maxRows;
    this.held = this.held.slice(-maxRows);
    this.trim();
    this.onChange();
  }

  /** Empty the list (and what waits to be drawn or is held). */
  clear() {
    this.incoming = [];
    this.held = [];
    this.heldEvents = 0;
    this.selectedRow = null;
    this.body.replaceChildren();
    this.onChange();
  }

  get rowCount() {
    return this.body.rows.length;
  }
}

function gapRow(item) {
  const row = document.createElement("tr");
  row.className = "gap";
  const cell = document.createElement("td");
  cell.colSpan = COLUMNS.length;
  cell.textContent = `${formatTime(item.at)}: events may be missing here. ${item.gap}`;
  row.append(cell);
  return row;
}
