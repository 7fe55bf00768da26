#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# http.connections.per.ip and http.connections.max, as a client sees them:
# with 3 per address and 5 in all, three idle connections from 127.0.0.1
# leave a fourth from that address closed without an answer (and logged),
# while 127.0.0.2 still gets in; its third waits unanswered while the
# instance is full (5) and is served as soon as one closes. An
# out-of-range value is refused at start-up with the key named.
source "$(dirname "$0")/lib.sh"

"$consumer_bin" --embedded-broker -X http.connections.max=0 \
        >"$work/bad.out" 2>"$work/bad.log" && fail "http.connections.max=0 was accepted"
grep -q "http.connections.max" "$work/bad.log" ||
        fail "the error does not name http.connections.max: $(cat "$work/bad.log")"

start_consumer c1 --embedded-broker -X http.connections.per.ip=3 \
        -X http.connections.max=5
wait_ready "$c1_http"
port=${c1_http##*:}

python3 - "$port" <<'PY' || fail "connection limits not applied"
import socket, sys, time
port = int(sys.argv[1])

def hold(src):
    """An idle connection: a request line with no end of headers."""
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return s

def status(src):
    """The status code of GET /healthz from address src, or None when the
    server closes the connection without answering."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        data = s.recv(64)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    finally:
        s.close()
    return int(data.split()[1]) if data.startswith(b"HTTP/") else None

def expect(what, got, want):
    print(f"{what}: {got}")
    if got != want:
        sys.exit(f"{what}: got {got}, expected {want}")

expect("a request with nothing held", status("127.0.0.1"), 200)
a = [hold("127.0.0.1") for _ in range(3)]
time.sleep(0.3)  # let the server accept them
expect("4th from 127.0.0.1 (3 per address)", status("127.0.0.1"), None)
expect("1st from 127.0.0.2", status("127.0.0.2"), 200)
b = [hold("127.0.0.2") for _ in range(2)]
time.sleep(0.3)
# Full (5): the server stops accepting; a new connection waits in the
# listen backlog, unanswered, until one of the five closes.
w = socket.socket()
w.bind(("127.0.0.2", 0))
w.connect(("127.0.0.1", port))
w.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
w.settimeout(1.5)
try:
    early = w.recv(64)
except socket.timeout:
    early = None
expect("3rd from 127.0.0.2 while 5 are open (waits)", early, None)
b.pop().close()
w.settimeout(10)
late = w.recv(64)
w.close()
expect("the waiting one once a connection closed",
       int(late.split()[1]) if late.startswith(b"HTTP/") else late, 200)
for s in a + b:
    s.close()
deadline = time.time() + 10
while (got := status("127.0.0.1")) != 200 and time.time() < deadline:
    time.sleep(0.1)
expect("after the idle connections closed", got, 200)
PY
grep -qi "limit" "$work/c1.log" || fail "the refused connections are not logged"
grep -i "limit" "$work/c1.log" | head -n 2
stop_consumers c1
log "passed"
