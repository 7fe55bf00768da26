#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small Server-Sent Events client for the integration tests (standard
library only): connects to a swarmq /events URL, parses the stream and
writes one JSON line per SSE event ({"recv_ms", "id", "event", "data"};
recv_ms is the wall clock at arrival) to --out,
flushing each, until a condition holds or the deadline passes.

  sse_client.py URL --out FILE [--last-event-id N] [--until-ids FILE]
                [--until-count N] [--until-event NAME] [--timeout S]
                [--read-delay S] [--ready-file FILE]

--until-ids: stop once every id in FILE has a terminal event
(succeeded/failed/timed_out/dead_lettered). --read-delay sleeps between
reads of 1 KiB (a deliberately slow client). --ready-file is written once
the response headers arrived. Exit 0 when the condition held, 1 on
timeout, 2 on an HTTP error (status and body on stderr).
"""
import argparse
import http.client
import json
import ssl
import sys
import time
import urllib.parse

TERMINAL = {"succeeded", "failed", "timed_out", "dead_lettered"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--out", required=True)
    ap.add_argument("--last-event-id")
    ap.add_argument("--until-ids")
    ap.add_argument("--until-count", type=int)
    ap.add_argument("--until-event")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--read-delay", type=float, default=0)
    ap.add_argument("--ready-file")
    ap.add_argument("--cafile")
    a = ap.parse_args()

    want = None
    if a.until_ids:
        want = set(l.strip() for l in open(a.until_ids) if l.strip())
    u = urllib.parse.urlsplit(a.url)
    deadline = time.monotonic() + a.timeout
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=a.cafile)
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=5, context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    headers = {"Accept": "text/event-stream"}
    if a.last_event_id is not None:
        headers["Last-Event-ID"] = a.last_event_id
    path = u.path + ("?" + u.query if u.query else "")
    conn.connect()
    # The socket the response is read from: its timeout is set to the time
    # left before each read, so a timeout means the deadline passed. A
    # read that timed out leaves the response unreadable for good (CPython's
    # SocketIO: "cannot read from timed out object"), so a short timeout
    # that reads on after a silent stretch would spin to the deadline.
    sock = conn.sock
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        sys.stderr.write(f"HTTP {resp.status}: {resp.read().decode(errors='replace')}\n")
        return 2
    ctype = resp.getheader("Content-Type", "")
    if not ctype.startswith("text/event-stream"):
        sys.stderr.write(f"unexpected Content-Type {ctype!r}\n")
        return 2
    if a.ready_file:
        open(a.ready_file, "w").write("ready=1\n")

    out = open(a.out, "w")
    buf = b""
    event = {"data": []}
    count = 0
    done_ids = set()

    def satisfied():
        if want is not None and want <= done_ids:
            return True
        if a.until_count is not None and count >= a.until_count:
            return True
        return False

    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = resp.read1(1024)
        except TimeoutError:  # socket.timeout: the deadline passed
            break
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.decode()
            if line == "":
                if event["data"] or "event" in event:
                    rec = {
                        "recv_ms": time.time() * 1000,
                        "id": event.get("id"),
                        "event": event.get("event", "message"),
                        "data": json.loads("\n".join(event["data"])),
                    }
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    count += 1
                    if rec["event"] == "message" and rec["data"].get("type") in TERMINAL:
                        done_ids.add(rec["data"].get("task_id"))
                    if a.until_event and rec["event"] == a.until_event:
                        return 0
                    if satisfied():
                        return 0
                event = {"data": []}
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    event["data"].append(value)
                elif field in ("id", "event", "retry"):
                    event[field] = value
        if a.read_delay:
            time.sleep(a.read_delay)
    if want is not None:
        missing = sorted(want - done_ids)
        sys.stderr.write(f"timed out: {len(missing)} ids without a terminal event, e.g. {missing[:5]}\n")
    else:
        sys.stderr.write(f"timed out after {count} events\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
