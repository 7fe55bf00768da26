# SPDX-License-Identifier: Apache-2.0
"""Recovery time of each fault, from a sampler.py series of the results
topic and a list of fault events ("EPOCH_SECONDS LABEL" lines).

For each event: the throughput before it (records/s over the PRE seconds
before the event) and the recovery time, the seconds from the event until
the throughput over a WINDOW-second window is back to at least FRACTION of
that rate. Prints one JSON object: per event, and the median and max.

    python recovery.py --samples FILE --events FILE [--pre 3] [--window 1]
                       [--fraction 0.5]
"""
import argparse
import bisect
import json
import statistics
import sys


def count_at(ts, cs, t):
    """Records at time t (the last sample at or before t)."""
    i = bisect.bisect_right(ts, t) - 1
    return cs[i] if i >= 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--pre", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--fraction", type=float, default=0.5)
    a = ap.parse_args()
    ts, cs = [], []
    for line in open(a.samples):
        t, c = line.split()
        ts.append(float(t))
        cs.append(int(c))
    events = []
    for line in open(a.events):
        t, label = line.split(maxsplit=1)
        events.append((float(t), label.strip()))
    out = []
    for i, (te, label) in enumerate(events):
        c0, c1 = count_at(ts, cs, te - a.pre), count_at(ts, cs, te)
        rate = (c1 - c0) / a.pre if c0 is not None and c1 is not None else 0
        rec = {"event": label, "at": te, "rate_before": round(rate, 1),
               "recovery_s": None}
        if rate > 0:
            j = bisect.bisect_left(ts, te + a.window)
            for k in range(j, len(ts)):
                prev = count_at(ts, cs, ts[k] - a.window)
                if prev is not None and \
                        (cs[k] - prev) / a.window >= a.fraction * rate:
                    rec["recovery_s"] = round(ts[k] - te, 1)
                    break
            if rec["recovery_s"] is None and cs and cs[-1] >= max(cs):
                # The work ran out before the rate came back.
                rec["recovery_s"] = None
        out.append(rec)
    got = [r["recovery_s"] for r in out if r["recovery_s"] is not None]
    print(json.dumps({
        "events": out,
        "measured": len(got),
        "median_s": round(statistics.median(got), 1) if got else None,
        "max_s": max(got) if got else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
