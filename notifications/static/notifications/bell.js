// The header bell's live unread count: read once over the API, then kept current by
// /ws/notifications/ (every message carries "unread"). Reconnects with a capped backoff.
const bell = document.querySelector("a.bell[data-socket]");

function show(count) {
  const badge = bell.querySelector("[data-bell-count]");
  badge.textContent = count > 0 ? ` (${count})` : "";
  bell.setAttribute("aria-label", count > 0 ? `Notifications, ${count} unread` : "Notifications");
}

async function load() {
  try {
    const response = await fetch(bell.dataset.unreadUrl, { credentials: "same-origin" });
    if (response.ok) show((await response.json()).unread);
  } catch (error) {
    // The socket will bring the count with the next notification.
  }
}

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${bell.dataset.socket}`);
  socket.addEventListener("open", () => { delay = 1000; load(); });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (typeof message.unread === "number") show(message.unread);
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) return; // logged out: nothing to count
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  });
}

if (bell) connect();
