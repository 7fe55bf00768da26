#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""swarmq reference pool worker in Python (standard library only).

Speaks the framed protocol of docs/worker-protocol.md on stdin/stdout: sends
a hello, then answers task frames with result frames and ping frames with
pong frames, until stdin reaches EOF. Copy it and replace run_task() with
your own code.

The demonstration operations (the task payload is "<op> <argument>"):
  echo TEXT    output TEXT
  upper TEXT   output TEXT in upper case
  pid          output "pid=<this worker's pid>"
  sleep MS     sleep MS milliseconds, output "slept MS pid=<pid>"
  fail TEXT    a failure result with TEXT as the error
  crash        exit(3) in the middle of the task (no result)
  hang         answer, then stop reading stdin forever (pings go unanswered)
Anything else: output the payload unchanged.
"""
import json
import os
import struct
import sys
import time

PROTOCOL = 1
HELLO, TASK, RESULT, PING, PONG = b"H", b"T", b"R", b"P", b"O"

stdin = sys.stdin.buffer
stdout = sys.stdout.buffer


def read_exact(n):
    """Reads n bytes, or returns None at EOF."""
    buf = b""
    while len(buf) < n:
        chunk = stdin.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame():
    header = read_exact(5)
    if header is None:
        return None, None
    length, ftype = struct.unpack(">IB", header)
    body = read_exact(length - 1)
    if body is None:
        return None, None
    return bytes([ftype]), body


def write_frame(ftype, body):
    stdout.write(struct.pack(">I", len(body) + 1) + ftype + body)
    stdout.flush()


def parse_task(body):
    """seq, id, type, deadline_ms, attempt, headers, payload."""
    off = 0

    def u32():
        nonlocal off
        (v,) = struct.unpack_from(">I", body, off)
        off += 4
        return v

    def string():
        nonlocal off
        n = u32()
        s = body[off:off + n].decode("utf-8", "replace")
        off += n
        return s

    seq = u32()
    task_id = string()
    task_type = string()
    deadline_ms = u32()
    attempt = u32()
    headers = {}
    for _ in range(u32()):
        name = string()
        headers[name] = string()
    return seq, task_id, task_type, deadline_ms, attempt, headers, body[off:]


def result(seq, ok, output=b"", error=""):
    err = error.encode("utf-8")
    write_frame(RESULT, struct.pack(">IBI", seq, 0 if ok else 1, len(err)) + err + output)


def run_task(seq, payload):
    op, _, arg = payload.decode("utf-8", "replace").partition(" ")
    if op == "echo":
        result(seq, True, arg.encode())
    elif op == "upper":
        result(seq, True, arg.upper().encode())
    elif op == "pid":
        result(seq, True, b"pid=%d" % os.getpid())
    elif op == "sleep":
        time.sleep(int(arg or "0") / 1000.0)
        result(seq, True, b"slept %s pid=%d" % (arg.encode(), os.getpid()))
    elif op == "fail":
        result(seq, False, error=arg or "failed on purpose")
    elif op == "crash":
        os._exit(3)
    elif op == "hang":
        result(seq, True, b"hanging pid=%d" % os.getpid())
        while True:
            time.sleep(3600)
    else:
        result(seq, True, payload)


def main():
    hello = {"protocol": PROTOCOL, "worker": "swarmq_worker.py", "version": "1.0",
             "capabilities": sys.argv[1].split(",") if len(sys.argv) > 1 else []}
    if len(sys.argv) <= 1:
        del hello["capabilities"]  # serves whatever the agent is declared with
    write_frame(HELLO, json.dumps(hello).encode())
    while True:
        ftype, body = read_frame()
        if ftype is None:
            return 0  # EOF on stdin: swarmq asks us to exit
        if ftype == TASK:
            seq, _id, _type, _deadline, _attempt, _headers, payload = parse_task(body)
            run_task(seq, payload)
        elif ftype == PING:
            write_frame(PONG, body)
        else:
            print("swarmq_worker.py: unexpected frame type %r" % ftype, file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
