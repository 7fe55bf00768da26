# SPDX-License-Identifier: Apache-2.0
"""Samples how many records a topic holds (the sum of its partitions' high
watermarks) every INTERVAL seconds and appends "EPOCH_SECONDS COUNT" lines to
OUT, until killed. A sample the broker cannot answer (it is down) is
skipped. The chaos suite reads the results topic this way to see throughput
drop at a fault and come back (tests/chaos/recovery.py).

    python sampler.py --bootstrap B --topic T --out FILE [--interval 0.25]
"""
import argparse
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.25)
    a = ap.parse_args()
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "sampler",
                  "enable.auto.commit": False, "log_level": 0})
    parts = None
    with open(a.out, "a", buffering=1) as out:
        while True:
            t0 = time.time()
            try:
                if parts is None:
                    md = c.list_topics(a.topic, timeout=2)
                    t = md.topics.get(a.topic)
                    if t is not None and t.error is None and t.partitions:
                        parts = sorted(t.partitions)
                if parts is not None:
                    total = 0
                    for p in parts:
                        _, hi = c.get_watermark_offsets(
                            TopicPartition(a.topic, p), timeout=2)
                        total += hi
                    out.write(f"{t0:.3f} {total}\n")
            except Exception:  # broker down: no sample
                pass
            time.sleep(max(0.0, a.interval - (time.time() - t0)))


if __name__ == "__main__":
    sys.exit(main())
