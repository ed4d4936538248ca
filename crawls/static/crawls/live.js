// Live crawl progress for the dashboard and the admin: progressive enhancement only.
// Pages are complete without this module; it follows the WebSocket streams (docs/live.md)
// and updates elements marked with data-* attributes. No inline script, no dependencies.

const FINAL = new Set(["crawl.succeeded", "crawl.failed", "crawl.cancelled", "crawl.degraded"]);
const STATUS_AFTER = {
  "crawl.queued": "queued",
  "crawl.started": "running",
  "crawl.resumed": "running",
  "crawl.retrying": "queued",
  "crawl.succeeded": "succeeded",
  "crawl.failed": "failed",
  "crawl.cancelled": "cancelled",
  "crawl.degraded": "degraded",
};
const STATUS_LABEL = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
  degraded: "Degraded",
};
const COUNTERS = [
  "pages_done",
  "pages_failed",
  "pages_total",
  "items_new",
  "items_changed",
  "items_unchanged",
];
const LOG_MAX = 200; // lines kept in the event log
const ERRORS_MAX = 200; // page errors kept in their list
const REFUSED = new Set([4401, 4403, 4404]); // not signed in, not yours: retrying won't help
const BACKOFF_MAX = 30000;

const isFinal = (status) => ["succeeded", "failed", "cancelled", "degraded"].includes(status);

function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** Follow one stream: reconnect with backoff (path() says where to resume) until done(). */
function follow({ path, onFrame, onState, done }) {
  let delay = 500;
  let socket = null;
  const open = () => {
    socket = new WebSocket(socketUrl(path()));
    socket.addEventListener("open", () => {
      delay = 500;
      onState("Live");
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      onFrame(frame, socket);
    });
    socket.addEventListener("close", (event) => {
      if (done()) {
        onState("");
        return;
      }
      if (REFUSED.has(event.code)) {
        onState("Live updates unavailable: reload the page.");
        return;
      }
      onState("Reconnecting…");
      setTimeout(open, delay + Math.random() * 250);
      delay = Math.min(delay * 2, BACKOFF_MAX);
    });
  };
  open();
}

function stateFrom(element) {
  const state = { status: element.dataset.status };
  for (const name of COUNTERS) {
    const key = name.replace(/_(\w)/g, (_, c) => c.toUpperCase());
    if (element.dataset[key] !== undefined) state[name] = Number(element.dataset[key]);
  }
  return state;
}

function setField(root, name, text) {
  for (const element of root.querySelectorAll(`[data-field="${name}"]`)) {
    if (element.textContent !== text) element.textContent = text;
  }
}

function errorsText(errors) {
  const entries = Object.entries(errors || {});
  return entries.length ? entries.map(([k, v]) => `${k}: ${v}`).join(", ") : "none";
}

/** Show `state` in `root` (a crawl's progress section or an overview row). The figures
 * (percent, pages/s, ETA, error count) come computed by the server (crawls/engine/progress.py)
 * in progress and final events and in the workspace snapshot; until one arrives the page shows
 * what the server rendered. */
function render(root, state) {
  for (const name of COUNTERS) {
    if (state[name] !== undefined) setField(root, name, String(state[name]));
  }
  if ("pages_per_s" in state) {
    setField(root, "pages_per_s", state.pages_per_s == null ? "—" : String(state.pages_per_s));
  }
  if ("eta_s" in state) {
    setField(root, "eta_s", state.eta_s == null ? "—" : `${state.eta_s} s`);
  }
  if (state.errors) setField(root, "errors", errorsText(state.errors));
  if ("error_count" in state) setField(root, "error_count", String(state.error_count));
  if (state.status) {
    setField(root, "status", STATUS_LABEL[state.status] || state.status);
    root.dataset.status = state.status;
  }
  if ("percent" in state) {
    for (const bar of root.querySelectorAll("progress[data-bar]")) {
      bar.value = state.percent;
      bar.textContent = `${state.percent}%`;
    }
    setField(root, "percent", `${state.percent}%`);
  }
}

/** Apply one event frame to a crawl's state. */
function apply(state, frame) {
  const payload = frame.payload || {};
  if (frame.event === "crawl.progress" || FINAL.has(frame.event)) {
    for (const [key, value] of Object.entries(payload)) {
      if (key !== "error") state[key] = value;
    }
  }
  if (STATUS_AFTER[frame.event]) state.status = STATUS_AFTER[frame.event];
}

function summary(frame) {
  const p = frame.payload || {};
  switch (frame.event) {
    case "crawl.progress":
      return `${p.pages_processed}/${p.pages_total} pages, ${p.pages_per_s} pages/s`;
    case "crawl.items":
      return `${(p.new || []).length} new, ${(p.changed || []).length} changed`;
    case "page.error":
    case "url.refused":
      return `${p.url} ${p.class}: ${p.error}`;
    case "crawl.retrying":
      return `attempt ${p.attempt} in ${p.in_seconds} s: ${p.error}`;
    default:
      if (FINAL.has(frame.event)) {
        return `${p.pages_done} pages done, ${p.pages_failed} failed${p.error ? `: ${p.error}` : ""}`;
      }
      return "";
  }
}

function appendCapped(list, item, max) {
  list.querySelector("[data-empty]")?.remove();
  list.append(item);
  while (list.children.length > max) list.firstElementChild.remove();
}

function logLine(frame) {
  const item = document.createElement("li");
  item.value = frame.seq;
  const time = document.createElement("time");
  time.dateTime = frame.at || "";
  // HH:MM:SS in UTC, as the server renders the log (event times are sent in UTC).
  time.textContent = frame.at ? frame.at.slice(11, 19) : "";
  const type = document.createElement("strong");
  type.textContent = frame.event;
  item.append(time, " ", type, " ", summary(frame));
  return item;
}

function errorLine(payload) {
  const item = document.createElement("li");
  const url = document.createElement("code");
  url.textContent = payload.url || "";
  const status = payload.status ? ` (${payload.status})` : "";
  item.append(url, ` — ${payload.class}${status}: ${payload.error}`);
  return item;
}

/** Refetch a server-rendered fragment into `target`, at most once per `wait` ms. */
function refresher(target, url, wait = 500) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) target.innerHTML = await response.text();
      } catch {
        // the next crawl.items event tries again
      }
    }, wait);
  };
}

/** A crawl's progress section (crawl page, admin): /ws/crawls/<id>/?after=<seq>. */
function liveCrawl(section) {
  const id = section.dataset.crawl;
  const state = stateFrom(section);
  let last = Number(section.dataset.after || 0);
  const page = section.closest("main, #content") || document;
  const log = page.querySelector("[data-log]");
  const errors = page.querySelector("[data-page-errors]");
  const items = page.querySelector("[data-items]");
  const refreshItems = items ? refresher(items, items.dataset.itemsUrl) : () => {};
  const liveState = section.querySelector("[data-live-state]");
  render(section, state);
  if (isFinal(state.status)) return;

  const showActions = () => {
    for (const form of page.querySelectorAll("form[data-when]")) {
      form.hidden = (form.dataset.when === "active") === isFinal(state.status);
    }
  };
  follow({
    path: () => `/ws/crawls/${id}/?after=${last}`,
    done: () => isFinal(state.status),
    onState: (text) => {
      if (liveState) liveState.textContent = text;
    },
    onFrame: (frame, socket) => {
      if (frame.type !== "crawl.event" || String(frame.crawl) !== id) return;
      if (frame.seq <= last) return; // seen already (a resumed stream repeats nothing new)
      if (frame.seq > last + 1) {
        socket.close(4000, "gap"); // resume from the last event seen: the server replays
        return;
      }
      last = frame.seq;
      apply(state, frame);
      render(section, state);
      if (log) appendCapped(log, logLine(frame), LOG_MAX);
      if (errors && (frame.event === "page.error" || frame.event === "url.refused")) {
        appendCapped(errors, errorLine(frame.payload || {}), ERRORS_MAX);
      }
      if (frame.event === "crawl.items" || FINAL.has(frame.event)) refreshItems();
      if (STATUS_AFTER[frame.event]) showActions();
    },
  });
}

/** The overview's crawl table: /ws/workspace/?workspace=<id> (a snapshot, then events). */
function liveWorkspace(section) {
  const workspace = section.dataset.workspace;
  const rows = section.querySelector("[data-rows]");
  const template = section.querySelector("template[data-row-template]");
  const crawlUrl = section.dataset.crawlUrl || "/crawls/0/";
  const liveState = section.querySelector("[data-live-state]");
  const crawls = new Map(); // id → {row, state, last}

  for (const row of rows.querySelectorAll("tr[data-live-row]")) {
    crawls.set(row.dataset.crawl, { row, state: stateFrom(row), last: 0 });
  }

  const entry = (id, sourceId, sourceName) => {
    let known = crawls.get(id);
    if (known) return known;
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.crawl = id;
    const link = row.querySelector("[data-field=link]");
    link.href = crawlUrl.replace("/0/", `/${id}/`);
    row.querySelector("progress").setAttribute("aria-label", `Crawl ${id} pages processed`);
    setField(row, "id", id);
    const named = document.querySelector(`[data-source-name="${CSS.escape(String(sourceId))}"]`);
    setField(row, "source_name", sourceName || named?.textContent.trim() || `Source ${sourceId}`);
    rows.querySelector("[data-empty]")?.remove();
    const later = [...rows.querySelectorAll("tr[data-live-row]")].find(
      (other) => Number(other.dataset.crawl) < Number(id),
    );
    rows.insertBefore(row, later || null); // newest first, as the server renders them
    known = { row, state: {}, last: 0 };
    crawls.set(id, known);
    return known;
  };

  // The snapshot names every active crawl of the workspace: from then on the count is ours.
  const running = document.querySelector("[data-count-running]");
  let snapshotSeen = false;
  const count = () => {
    if (!running || !snapshotSeen) return;
    const active = [...crawls.values()].filter((c) => !isFinal(c.state.status)).length;
    running.textContent = String(active);
  };

  follow({
    path: () => `/ws/workspace/?workspace=${workspace}`,
    done: () => false,
    onState: (text) => {
      if (liveState) liveState.textContent = text;
    },
    onFrame: (frame) => {
      if (frame.type === "workspace.snapshot") {
        for (const crawl of frame.crawls || []) {
          const known = entry(String(crawl.id), crawl.source, crawl.source_name);
          if ((crawl.event_seq || 0) < known.last) continue; // older than what we showed
          Object.assign(known.state, crawl);
          known.last = crawl.event_seq || 0;
          render(known.row, known.state);
        }
        snapshotSeen = true;
        count();
        return;
      }
      if (frame.type !== "crawl.event") return;
      const id = String(frame.crawl);
      if (!crawls.has(id) && frame.event !== "crawl.queued") return;
      const known = entry(id, (frame.payload || {}).source, "");
      if (frame.seq <= known.last) return;
      known.last = frame.seq;
      apply(known.state, frame);
      render(known.row, known.state);
      count();
    },
  });
}

function start() {
  if (!("WebSocket" in window)) return;
  for (const section of document.querySelectorAll("[data-live-crawl]")) liveCrawl(section);
  for (const section of document.querySelectorAll("[data-live-workspace]")) {
    liveWorkspace(section);
  }
}

start();
