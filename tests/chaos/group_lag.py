# SPDX-License-Identifier: Apache-2.0
"""Prints how many records of a topic lie after a consumer group's committed
offsets (a partition with no committed offset counts from its low
watermark), using confluent-kafka: an independent client, not swarmq's.

    python group_lag.py --bootstrap B --group G --topic T [--json]

Exit 0 with the number (or a JSON object per partition with --json), 1 when
the broker does not answer in time.
"""
import argparse
import json
import sys

from confluent_kafka import Consumer, TopicPartition


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(a.topic, timeout=a.timeout)
        t = md.topics.get(a.topic)
        if t is None or t.error is not None:
            print(f"group_lag: topic {a.topic}: "
                  f"{t.error if t else 'not found'}", file=sys.stderr)
            return 1
        tps = [TopicPartition(a.topic, p) for p in sorted(t.partitions)]
        committed = c.committed(tps, timeout=a.timeout)
        out, total = {}, 0
        for tp in committed:
            lo, hi = c.get_watermark_offsets(
                TopicPartition(a.topic, tp.partition), timeout=a.timeout)
            pos = tp.offset if tp.offset >= 0 else lo
            lag = max(hi - pos, 0)
            out[tp.partition] = {"committed": tp.offset, "high": hi,
                                 "lag": lag}
            total += lag
    except Exception as e:  # KafkaException: broker down, timeout
        print(f"group_lag: {e}", file=sys.stderr)
        return 1
    finally:
        c.close()
    print(json.dumps({"lag": total, "partitions": out}) if a.json else total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
