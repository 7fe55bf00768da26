#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The live page at GET / in a real browser: Debian's chromium, headless,
# driven by selenium (the test venv from ops/venv.sh). Opens the page of a
# consumer on the embedded broker, submits tasks with swarmq-producer, and
# asserts from the DOM that the numbers move (finished tasks, throughput,
# sparklines with their scale, tables) and that the tasks' events appear in
# the list, live from /events, with their date; failed, retried and
# dead-lettered counts; an event's full JSON on a click; partitions grouped
# by topic and sorted by lag on a click; the task lookup; the favicon. Saves a screenshot: tests/out/0061-status-page-browser/
# page.png under the build directory. Skips loudly only when chromium or
# chromedriver is not installed.
source "$(dirname "$0")/lib.sh"

chromium_bin=$(command -v chromium || command -v chromium-browser || true)
driver_bin=$(command -v chromedriver || true)
if [[ -z "$chromium_bin" || -z "$driver_bin" ]]; then
        echo "SKIPPED [$test_name]: chromium or chromedriver is not installed" \
                "(bash ops/deps.sh --test installs them); the status page was NOT tested" >&2
        exit 77 # ctest SKIP_RETURN_CODE: shown as skipped, not passed
fi
python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"

start_consumer c1 --embedded-broker -X executor.threads=4 \
        -X retry.backoff.initial.ms=100 -X retry.backoff.jitter=none \
        -X workflows.enable=true
wait_ready "$c1_http"

# The page and its assets come from the binary, with their types.
for path_type in "/ text/html" "/app.js text/javascript" "/style.css text/css"; do
        read -r path type <<<"$path_type"
        got=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$c1_http$path")
        [[ "$got" == "200 $type"* ]] || fail "GET $path: $got"
done
log "ok: /, /app.js, /style.css served from the binary"

"$python" - "$c1_http" "$producer_bin" "$bootstrap" "$work" \
        "$chromium_bin" "$driver_bin" <<'PY' || fail "the page did not show the work (see above)"
import subprocess, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, producer, bootstrap, work, chromium, driver_bin = sys.argv[1:7]
opts = Options()
opts.binary_location = chromium
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--window-size=1400,1000"):
    opts.add_argument(a)
drv = webdriver.Chrome(service=Service(driver_bin), options=opts)
try:
    drv.set_page_load_timeout(30)
    drv.get(url + "/")
    wait = WebDriverWait(drv, 30, poll_frequency=0.2)
    text = lambda i: drv.find_element(By.ID, i).text
    wait.until(lambda d: text("instance") == "c1")
    wait.until(lambda d: text("state") == "running")
    wait.until(lambda d: text("live") == "events: live")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#partitions tbody tr.part")) == 36)
    groups = drv.execute_script(
        "return Array.from(document.querySelectorAll('#partitions tbody tr.group'))"
        ".map(r => r.textContent);")
    assert len(groups) == 3 and all(" · 12 partitions · lag " in g for g in groups), groups
    icon = drv.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
    assert icon.startswith("data:image/svg+xml"), icon
    # One script call: the page replaces the table's rows every second, so
    # rows found by one WebDriver call can be stale by the next.
    agents = drv.execute_script(
        "return Array.from(document.querySelectorAll('#agents tbody tr'))"
        ".map(r => r.cells[0].textContent);")
    assert agents == ["noop", "echo", "sleep", "sha256", "fail", "cpu"], agents
    flags = text("flags")
    assert flags not in ("…", "none") and "=" in flags, flags
    before = int(text("tasks-finished"))
    assert before == 0, before
    print(f"page loaded: instance c1 running, 36 partitions, 6 agents, events live, flags {flags}")

    # 3,000 echo tasks and 200 sleeping 5 ms each: enough for several
    # one-second samples of throughput and task time.
    for args in (["--count", "3000", "--type", "echo", "--payload", "hi", "--id-prefix", "pg"],
                 ["--count", "200", "--type", "sleep", "--payload", "5", "--id-prefix", "slow"]):
        subprocess.run([producer, "-b", bootstrap, "-q", "submit", "--rate", "1500"] + args,
                       check=True)

    # 4 tasks that fail twice: each a failed attempt that is retried, then
    # a last attempt counted as dead-lettered (every attempt is finished).
    subprocess.run([producer, "-b", bootstrap, "-q", "submit", "--count", "4",
                    "--type", "fail", "--payload", "on purpose", "--max-attempts", "2",
                    "--id-prefix", "bad"], check=True)

    wait = WebDriverWait(drv, 90, poll_frequency=0.2)
    wait.until(lambda d: int(text("tasks-dlt")) == 4)
    wait.until(lambda d: int(text("tasks-finished")) == 3208)
    assert int(text("tasks-received")) == 3204
    assert int(text("tasks-succeeded")) == 3200
    assert int(text("tasks-failed")) == 4, text("tasks-failed")
    assert int(text("tasks-retried")) == 4, text("tasks-retried")
    assert int(text("tasks-timed-out")) == 0, text("tasks-timed-out")
    assert "nonzero" in drv.find_element(By.ID, "tasks-dlt").get_attribute("class")
    # Events: the list is live, newest first, and shows these tasks.
    wait.until(lambda d: int(text("events-count")) >= 100)
    # The event stream is rate limited per client, so it can still be
    # delivering the burst of "received" events when the counters reach
    # 3,200: wait for a terminal event to reach the list.
    wait.until(lambda d: d.execute_script(
        "return document.querySelector('#events li[data-type=\"succeeded\"]') !== null;"))
    # Read the live list in one script call (it changes under us).
    items = drv.execute_script(
        "return Array.from(document.querySelectorAll('#events li[data-type]'))"
        ".map(li => [li.dataset.type, li.dataset.taskId || '']);")
    assert items, "no events in the list"
    kinds = {t for t, _ in items}
    ids = {i for _, i in items}
    assert "succeeded" in kinds, kinds
    assert any(i.startswith("pg-") or i.startswith("slow-") for i in ids), list(ids)[:5]
    # The sparklines drew something and throughput was seen above zero.
    pts = drv.find_element(By.CSS_SELECTOR, "#spark-throughput polyline").get_attribute("points")
    assert len(pts.split()) >= 2, pts
    peak = max(float(p.split(",")[1]) for p in pts.split())
    low = min(float(p.split(",")[1]) for p in pts.split())
    assert low < peak, f"flat throughput sparkline: {pts}"
    lat = drv.find_element(By.CSS_SELECTOR, "#spark-latency polyline").get_attribute("points")
    assert len(lat.split()) >= 2, lat
    # The scale: the maximum drawn, a number above zero.
    scale = text("scale-throughput")
    assert scale.startswith("max ") and scale.endswith(" tasks/s"), scale
    assert float(scale.split()[1].replace(",", "")) > 0, scale
    assert text("scale-latency").startswith("max "), text("scale-latency")

    # Event times carry their date; a click opens the event's full JSON.
    import json, re
    # One script call: the stream is still delivering the burst, and the
    # list drops its oldest lines past 200, so an element found by one
    # WebDriver call can be gone by the next.
    got = drv.execute_script("""
        const li = document.querySelector('#events li[data-type]');
        const det = li.querySelector('details');
        li.scrollIntoView();
        det.querySelector('summary').click();
        return {stamp: det.querySelector('summary .t').textContent, open: det.open,
                type: li.dataset.type, json: det.querySelector('pre').textContent};""")
    stamp = got["stamp"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}", stamp), stamp
    assert got["open"], "the event did not open"
    shown = json.loads(got["json"])
    assert shown["type"] == got["type"], (shown, got["type"])
    assert {"seq", "at", "type", "instance"} <= set(shown), shown

    # The task lookup: a dead-lettered task's whole story from the ring.
    box = drv.find_element(By.ID, "lookup-id")
    box.clear()
    box.send_keys("bad-000001")
    drv.find_element(By.CSS_SELECTOR, "#lookup button").click()
    wait.until(lambda d: text("lookup-result").startswith(tuple("123456789")))
    story = drv.execute_script(
        "return Array.from(document.querySelectorAll('#lookup-events li'))"
        ".map(li => [li.dataset.type, li.dataset.taskId]);")
    assert {i for _, i in story} == {"bad-000001"}, story
    kinds = [t for t, _ in story]
    for k in ("received", "started", "retry_scheduled", "dead_lettered"):
        assert k in kinds, (k, kinds)
    box.clear()
    box.send_keys("no-such-task")
    drv.find_element(By.CSS_SELECTOR, "#lookup button").click()
    wait.until(lambda d: text("lookup-result").startswith("0 events of no-such-task"))

    # Sorting by lag: a click on the lag header; each topic's rows are then
    # in falling lag order, and the grouping stays.
    drv.find_element(By.ID, "sort-lag").click()
    assert "on" in drv.find_element(By.ID, "sort-lag").get_attribute("class")
    lags = drv.execute_script(
        "const by = {}; for (const r of document.querySelectorAll('#partitions tbody tr.part'))"
        " (by[r.dataset.topic] = by[r.dataset.topic] || []).push(parseInt(r.cells[2].textContent) || 0);"
        " return by;")
    assert len(lags) == 3 and all(len(v) == 12 for v in lags.values()), lags
    assert all(v == sorted(v, reverse=True) for v in lags.values()), lags
    committed = drv.execute_script(
        "return Array.from(document.querySelectorAll('#partitions tbody tr.part'))"
        ".reduce((s, r) => s + (parseInt(r.cells[1].textContent) || 0), 0);")
    print(f"page shows: 3208 finished, 4 failed, 4 retried, 4 dead-lettered, {text('events-count')} events seen, "
          f"throughput sparkline {len(pts.split())} points, committed sum {committed}")

    # A running workflow (a chord of two 4 s sleeps) is listed with its
    # counts while it runs, and leaves the list when it ended.
    with open(work + "/wf.json", "w") as f:
        f.write('{"id": "wf-page", "workflow": {"group": [{"type": "sleep", "payload": "4000"},'
                ' {"type": "sleep", "payload": "4000"}], "join": {"type": "noop"}}}')
    subprocess.run([producer, "-b", bootstrap, "-q", "workflow", work + "/wf.json"], check=True)
    row = lambda: drv.execute_script(
        "return Array.from(document.querySelectorAll('#workflows tbody tr'))"
        ".map(r => Array.from(r.cells).slice(0, 4).map(c => c.textContent));")
    wait = WebDriverWait(drv, 30, poll_frequency=0.2)
    wait.until(lambda d: row() == [["wf-page", "3", "2", "0"]])
    assert " running here · " in text("workflows-summary"), text("workflows-summary")
    print(f"workflows box: {row()} ({text('workflows-summary')})")
    wait.until(lambda d: row() == [])
    wait.until(lambda d: "1 ended here" in text("workflows-summary"))
    shot = work + "/page.png"
    drv.save_screenshot(shot)
    print("screenshot: " + shot)
finally:
    drv.quit()
PY
[[ -s "$work/page.png" ]] || fail "no screenshot"
log "screenshot saved: $work/page.png"
stop_consumers c1
log "passed"
