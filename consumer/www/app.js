// SPDX-License-Identifier: Apache-2.0
// swarmq live status page. Polls GET /status every second (numbers,
// sparklines of throughput and mean task time from counter deltas) and
// follows GET /events with EventSource (the browser resumes with
// Last-Event-ID after a drop). An event's line opens to its full JSON; the
// task lookup asks GET /events?format=json&task_id=ID for that task's events
// still in the instance's ring. Partitions are grouped by topic, sorted by
// partition or, after a click on "lag", by lag. Everything user-supplied is
// written with textContent, never as HTML.
"use strict";

const POLL_MS = 1000;
const SPARK_POINTS = 60;
const EVENTS_SHOWN = 200;

const $ = (id) => document.getElementById(id);
const setText = (id, v) => { const e = $(id); if (e.textContent !== String(v)) e.textContent = v; };

const history = { throughput: [], latency: [] };
let prev = null;
let eventsSeen = 0, eventsDropped = 0;
let sortByLag = false;

function fmtUptime(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

// "2026-12-07 01:02:03.456" in the browser's time zone: events of a
// long-running instance span days.
function fmtTime(ms) {
  const d = new Date(ms), p = (n, w = 2) => String(n).padStart(w, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
         p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." +
         p(d.getMilliseconds(), 3);
}

function fmtNum(v) { return v < 10 ? v.toFixed(v < 1 ? 2 : 1) : Math.round(v).toLocaleString("en"); }

function badge(id, text, cls) {
  const e = $(id);
  e.textContent = text;
  e.className = "badge " + cls;
}

// Draws the last SPARK_POINTS values, scaled from 0 to their maximum, and
// writes that maximum (the top of the scale) beside it.
function spark(id, values, unit) {
  const line = $("spark-" + id).querySelector("polyline");
  if (values.length < 2) { line.setAttribute("points", ""); return; }
  const max = Math.max(...values, 1e-9);
  setText("scale-" + id, "max " + fmtNum(Math.max(...values)) + " " + unit);
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
  setText("tasks-failed", t.failed);
  setText("tasks-timed-out", t.timed_out);
  setText("tasks-retried", t.retried);
  for (const id of ["tasks-failed", "tasks-timed-out", "tasks-dlt"])
    $(id).classList.toggle("nonzero", $(id).textContent !== "0");
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
  spark("throughput", history.throughput, "tasks/s");
  spark("latency", history.latency, "ms");

  const maxDepth = Math.max(1, ...Object.values(adm.lanes));
  rows("lanes", Object.entries(adm.lanes), ([name, depth]) =>
    [name, depth, bar(depth / maxDepth)]);
  rows("agents", s.agents, (a) => [
    a.name, a.capabilities.join(", "), a.in_flight + " / " + a.capacity, a.parked,
    a.finished, a.success_rate === null ? "–" : (a.success_rate * 100).toFixed(1) + "%",
    a.breaker === null ? "–" : String(a.breaker.state || a.breaker)]);
  // Rate limits: "held" is highlighted while a limit holds work back.
  $("ratelimits-box").hidden = !s.rate_limits;
  rows("ratelimits", s.rate_limits || [], (l) => {
    const held = document.createElement("span");
    held.textContent = l.held;
    held.className = l.held > 0 ? "paused" : "";
    held.title = l.held > 0 ? "tasks waiting for their token" : "";
    return [l.name, l.type ? "type " + l.type : "capability " + l.capability,
            fmtNum(l.rate) + " / " + fmtNum(l.group_rate) + " per s", held, l.delayed];
  });
  // Schedules: only the owner fires them (next tick on the owner only).
  const sch = s.schedules;
  $("schedules-box").hidden = !sch;
  if (sch) {
    setText("schedules-role", "this instance: " + sch.role);
    rows("schedules", sch.list, (x) => [
      x.name, x.cron || "every " + x.every_ms + " ms",
      x.last_tick_ms ? fmtTime(x.last_tick_ms) : "–",
      x.next_tick_ms ? fmtTime(x.next_tick_ms) : "–", x.fired, x.skipped]);
  }
  // Workflows: those whose partition of topic.workflows this instance
  // owns (docs/workflows.md), with their tasks started and ended so far.
  const wf = s.workflows;
  $("workflows-box").hidden = !wf;
  if (wf) {
    const ended = Object.values(wf.ended).reduce((a, b) => a + b, 0);
    setText("workflows-summary", wf.running + " running here · " +
            wf.partitions_owned + " of " + wf.partitions + " partitions · " +
            ended + " ended here");
    rows("workflows", wf.list, (x) => [
      x.id, x.tasks, x.started, x.ended,
      Math.max(0, Math.round((s.time_ms - x.submitted_at_ms) / 1000)) + " s"]);
  }
  const parts = s.partitions;
  renderPartitions(parts);
  const lag = parts.reduce((sum, p) => sum + (p.lag || 0), 0);
  setText("lag-total", parts.length + " assigned · lag " + lag);
  setText("updated", "updated " + fmtTime(s.time_ms));
}

// Partitions grouped by topic (a heading row with the topic's count and
// lag), within a topic by partition or, when sorting by lag, largest first.
function renderPartitions(parts) {
  const byTopic = new Map();
  for (const p of parts) {
    if (!byTopic.has(p.topic)) byTopic.set(p.topic, []);
    byTopic.get(p.topic).push(p);
  }
  const tbody = $("partitions").querySelector("tbody");
  const frag = document.createDocumentFragment();
  for (const topic of [...byTopic.keys()].sort()) {
    const list = byTopic.get(topic).sort((a, b) =>
      sortByLag ? (b.lag || 0) - (a.lag || 0) || a.partition - b.partition
                : a.partition - b.partition);
    const head = document.createElement("tr");
    head.className = "group";
    const td = document.createElement("td");
    td.colSpan = 5;
    td.textContent = topic + " · " + list.length + " partitions · lag " +
                     list.reduce((sum, p) => sum + (p.lag || 0), 0);
    head.appendChild(td);
    frag.appendChild(head);
    for (const p of list) {
      const tr = document.createElement("tr");
      tr.className = "part";
      tr.dataset.topic = topic;
      const flag = document.createElement("span");
      if (p.paused) { flag.textContent = "paused"; flag.className = "paused"; }
      for (const c of [p.partition, p.committed === null ? "–" : p.committed,
                       p.lag === null ? "?" : p.lag, p.in_flight, flag]) {
        const cell = document.createElement("td");
        if (c instanceof Node) cell.appendChild(c); else cell.textContent = c;
        tr.appendChild(cell);
      }
      frag.appendChild(tr);
    }
  }
  tbody.replaceChildren(frag);
}

let lastStatus = null;
$("sort-lag").addEventListener("click", () => {
  sortByLag = !sortByLag;
  $("sort-lag").classList.toggle("on", sortByLag);
  $("sort-lag").textContent = sortByLag ? "lag ▾" : "lag";
  if (lastStatus) renderPartitions(lastStatus.partitions);
});

async function poll() {
  try {
    const r = await fetch("/status", { cache: "no-store" });
    if (r.ok) { lastStatus = await r.json(); render(lastStatus); }
    else setText("updated", "/status answered " + r.status);
  } catch (e) {
    setText("updated", "/status unreachable: " + e.message);
  }
  setTimeout(poll, POLL_MS);
}

// One event line: its time and summary; with the event's data, a click
// opens its full JSON.
function eventItem(cls, time, text, data) {
  const li = document.createElement("li");
  li.className = "ev-" + cls;
  const t = document.createElement("span");
  t.className = "t";
  t.textContent = time;
  if (!data) {
    li.appendChild(t);
    li.appendChild(document.createTextNode(text));
    return li;
  }
  li.dataset.type = data.type;
  if (data.task_id) li.dataset.taskId = data.task_id;
  const det = document.createElement("details");
  const sum = document.createElement("summary");
  sum.appendChild(t);
  sum.appendChild(document.createTextNode(text));
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(data, null, 2);
  det.appendChild(sum);
  det.appendChild(pre);
  li.appendChild(det);
  return li;
}

function eventSummary(e) {
  return [e.type, e.task_id, e.agent && "on " + e.agent, e.detail].filter(Boolean).join(" ");
}

function addEvent(cls, time, text, data) {
  const list = $("events");
  list.insertBefore(eventItem(cls, time, text, data), list.firstChild);
  while (list.childElementCount > EVENTS_SHOWN) list.removeChild(list.lastChild);
}

// The task lookup: that task's events still in the instance's ring.
$("lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("lookup-id").value.trim();
  const out = $("lookup-events");
  out.replaceChildren();
  if (!id) { setText("lookup-result", ""); return; }
  try {
    const r = await fetch("/events?format=json&limit=1000&task_id=" + encodeURIComponent(id),
                          { cache: "no-store" });
    if (!r.ok) { setText("lookup-result", "lookup: " + r.status + " " + (await r.text())); return; }
    const doc = await r.json();
    setText("lookup-result", doc.events.length + " events of " + id + " in the recent events" +
            (doc.events.length ? "" : " (it may be older than the ring, or on another instance)"));
    for (const e of doc.events)
      out.appendChild(eventItem(e.type, fmtTime(e.at), eventSummary(e), e));
  } catch (e) {
    setText("lookup-result", "lookup failed: " + e.message);
  }
});

function follow() {
  const es = new EventSource("/events");
  es.onopen = () => badge("live", "events: live", "ok");
  es.onerror = () => badge("live", "events: reconnecting", "off");
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    eventsSeen++;
    setText("events-count", eventsSeen);
    addEvent(e.type, fmtTime(e.at), eventSummary(e), e);
  };
  es.addEventListener("dropped", (m) => {
    const d = JSON.parse(m.data);
    eventsDropped += d.dropped;
    setText("events-dropped", eventsDropped);
    addEvent("dropped", fmtTime(Date.now()),
             d.dropped + " events skipped (over the per-client rate)", null);
  });
}

poll();
follow();
