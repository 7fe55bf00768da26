// SPDX-License-Identifier: Apache-2.0
// swarmq live status page. Polls GET /status every second (numbers,
// sparklines of throughput and mean task time from counter deltas) and
// follows GET /events with EventSource (the browser resumes with
// Last-Event-ID after a drop). Everything user-supplied is written with
// textContent, never as HTML.
"use strict";

const POLL_MS = 1000;
const SPARK_POINTS = 60;
const EVENTS_SHOWN = 200;

const $ = (id) => document.getElementById(id);
const setText = (id, v) => { const e = $(id); if (e.textContent !== String(v)) e.textContent = v; };

const history = { throughput: [], latency: [] };
let prev = null;
let eventsSeen = 0, eventsDropped = 0;

function fmtUptime(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

function badge(id, text, cls) {
  const e = $(id);
  e.textContent = text;
  e.className = "badge " + cls;
}

function spark(id, values) {
  const line = $(id).querySelector("polyline");
  if (values.length < 2) { line.setAttribute("points", ""); return; }
  const max = Math.max(...values, 1e-9);
  const step = 120 / (SPARK_POINTS - 1);
  const off = SPARK_POINTS - values.length;
  line.setAttribute("points", values.map((v, i) =>
    ((off + i) * step).toFixed(1) + "," + (29 - v / max * 27).toFixed(1)).join(" "));
}

function push(arr, v) { arr.push(v); if (arr.length > SPARK_POINTS) arr.shift(); }

// Replaces a table body's rows; cells are text.
function rows(tableId, data, cells) {
  const tbody = $(tableId).querySelector("tbody");
  const frag = document.createDocumentFragment();
  for (const d of data) {
    const tr = document.createElement("tr");
    for (const c of cells(d)) {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    }
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
}

function bar(frac) {
  const d = document.createElement("div");
  d.className = "bar";
  d.style.width = Math.min(100, Math.max(0, frac * 100)).toFixed(1) + "%";
  return d;
}

function render(s) {
  setText("instance", s.instance);
  setText("group", s.group);
  setText("version", s.version);
  setText("uptime", fmtUptime(s.uptime_seconds));
  setText("flags", Object.entries(s.flags || {}).map(([k, v]) => k + "=" + v).join(" ") || "none");
  badge("state", s.state, s.state === "running" ? "ok" : s.state === "joining" ? "warn" : "bad");
  badge("ready", s.ready ? "ready" : "not ready", s.ready ? "ok" : "bad");

  const t = s.tasks, adm = s.admission;
  setText("tasks-finished", t.finished);
  setText("tasks-received", t.received);
  setText("tasks-succeeded", t.succeeded);
  setText("tasks-dlt", t.dead_lettered);
  setText("window-tasks", adm.window.tasks);
  setText("window-critical", adm.window.critical);
  setText("high-mark", adm.high_mark);
  setText("running", adm.running);
  setText("executors", adm.executors);
  setText("intake", adm.paused ? "intake paused" : "intake open");
  $("intake").className = adm.paused ? "paused" : "";

  if (prev) {
    const dt = (s.time_ms - prev.time_ms) / 1000;
    if (dt > 0) {
      const tput = Math.max(0, (t.finished - prev.tasks.finished) / dt);
      push(history.throughput, tput);
      setText("throughput", tput < 10 ? tput.toFixed(1) : Math.round(tput));
      const dc = t.duration_count - prev.tasks.duration_count;
      const ds = t.duration_sum_seconds - prev.tasks.duration_sum_seconds;
      const lat = dc > 0 ? ds / dc * 1000 : 0;
      push(history.latency, lat);
      setText("latency", dc > 0 ? (lat < 10 ? lat.toFixed(2) : Math.round(lat)) : "–");
    }
  }
  prev = s;
  spark("spark-throughput", history.throughput);
  spark("spark-latency", history.latency);

  const maxDepth = Math.max(1, ...Object.values(adm.lanes));
  rows("lanes", Object.entries(adm.lanes), ([name, depth]) =>
    [name, depth, bar(depth / maxDepth)]);
  rows("agents", s.agents, (a) => [
    a.name, a.capabilities.join(", "), a.in_flight + " / " + a.capacity, a.parked,
    a.finished, a.success_rate === null ? "–" : (a.success_rate * 100).toFixed(1) + "%",
    a.breaker === null ? "–" : String(a.breaker.state || a.breaker)]);
  const parts = s.partitions.slice().sort((a, b) =>
    a.topic.localeCompare(b.topic) || a.partition - b.partition);
  rows("partitions", parts, (p) => {
    const flag = document.createElement("span");
    if (p.paused) { flag.textContent = "paused"; flag.className = "paused"; }
    return [p.topic, p.partition, p.committed === null ? "–" : p.committed,
            p.lag === null ? "?" : p.lag, p.in_flight, flag];
  });
  const lag = parts.reduce((sum, p) => sum + (p.lag || 0), 0);
  setText("lag-total", parts.length + " assigned · lag " + lag);
  setText("updated", "updated " + new Date(s.time_ms).toLocaleTimeString());
}

async function poll() {
  try {
    const r = await fetch("/status", { cache: "no-store" });
    if (r.ok) render(await r.json());
    else setText("updated", "/status answered " + r.status);
  } catch (e) {
    setText("updated", "/status unreachable: " + e.message);
  }
  setTimeout(poll, POLL_MS);
}

function addEvent(cls, time, text, data) {
  const list = $("events");
  const li = document.createElement("li");
  li.className = "ev-" + cls;
  if (data) { li.dataset.type = data.type; if (data.task_id) li.dataset.taskId = data.task_id; }
  const t = document.createElement("span");
  t.className = "t";
  t.textContent = time;
  li.appendChild(t);
  li.appendChild(document.createTextNode(text));
  list.insertBefore(li, list.firstChild);
  while (list.childElementCount > EVENTS_SHOWN) list.removeChild(list.lastChild);
}

function follow() {
  const es = new EventSource("/events");
  es.onopen = () => badge("live", "events: live", "ok");
  es.onerror = () => badge("live", "events: reconnecting", "off");
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    eventsSeen++;
    setText("events-count", eventsSeen);
    const time = new Date(e.at).toLocaleTimeString();
    const parts = [e.type, e.task_id, e.agent && "on " + e.agent, e.detail].filter(Boolean);
    addEvent(e.type, time, parts.join(" "), e);
  };
  es.addEventListener("dropped", (m) => {
    const d = JSON.parse(m.data);
    eventsDropped += d.dropped;
    setText("events-dropped", eventsDropped);
    addEvent("dropped", new Date().toLocaleTimeString(),
             d.dropped + " events skipped (over the per-client rate)", null);
  });
}

poll();
follow();
