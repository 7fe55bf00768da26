# SPDX-License-Identifier: Apache-2.0
"""Recovery time of each fault, from a sampler.py series of the results
topic and a list of fault events ("EPOCH_SECONDS LABEL" lines).

The baseline is the run's typical throughput: the median of the results
rates over WINDOW-second windows, leaving out windows with no results (the
start, the end, outages). A fault shows as a dip: the rate over the last
WINDOW seconds falls under FRACTION of the baseline within DIP seconds of
the fault (the survivors of a kill -9 run on until the rebalance stops
them, so the dip can come seconds later) and before the next fault. The recovery time is the seconds
from the fault to the end of that dip: the first moment from which the
rate stays at or above FRACTION of the baseline for SUSTAIN seconds (or
until the next fault). A stretch with no samples longer than two windows
(the sampler got no answer: brokers down) counts as a dip. A fault with no
dip recovers in 0 s. Also reported
per fault: the longest stretch with no new result in the 60 s after it.
Prints one JSON object: the baseline, per fault, the median and the max.

    python recovery.py --samples FILE --events FILE [--window 1]
                       [--fraction 0.5] [--dip 20] [--sustain 2]
"""
import argparse
import bisect
import json
import statistics
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--dip", type=float, default=20.0)
    ap.add_argument("--sustain", type=float, default=2.0)
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

    def count_at(t):
        i = bisect.bisect_right(ts, t) - 1
        return cs[i] if i >= 0 else None

    def rate_at(k):
        prev = count_at(ts[k] - a.window)
        return None if prev is None else (cs[k] - prev) / a.window

    rates = [r for r in (rate_at(k) for k in range(len(ts)))
             if r is not None and r > 0]
    base = statistics.median(rates) if rates else 0.0
    out = []
    low = a.fraction * base
    for n, (te, label) in enumerate(events):
        t_next = events[n + 1][0] if n + 1 < len(events) else float("inf")
        rec = {"event": label, "at": te, "recovery_s": None, "stall_s": 0.0}
        j = bisect.bisect_left(ts, te)
        dip = None
        for k in range(j, len(ts)):
            prev_t = max(ts[k - 1], te) if k > 0 else te
            # A dip after the next fault is that fault's.
            if prev_t > te + a.dip or ts[k] > t_next:
                break
            r = rate_at(k)
            # A gap in the samples is a dip too: the sampler got no answer
            # (the brokers leading the results partitions were down).
            if (r is not None and r < low) or ts[k] - prev_t > 2 * a.window:
                dip = k
                break
        if base > 0 and dip is None:
            rec["recovery_s"] = 0.0
        for k in range(dip if dip is not None else len(ts), len(ts)):
            r = rate_at(k)
            if r is None or r < low:
                continue
            end = min(ts[k] + a.sustain, t_next)
            held = all((rate_at(m) or 0) >= low
                       for m in range(k, len(ts)) if ts[m] <= end)
            if held and (ts[-1] >= end or ts[k] >= t_next):
                rec["recovery_s"] = round(ts[k] - te, 1)
                break
        # Longest stretch without a new result in the 60 s after the fault.
        i = bisect.bisect_left(ts, te)
        last_change, stall = te, 0.0
        for k in range(i, len(ts)):
            if ts[k] > te + 60:
                break
            if k > 0 and cs[k] != cs[k - 1]:
                stall = max(stall, ts[k] - last_change)
                last_change = ts[k]
        rec["stall_s"] = round(stall, 1)
        out.append(rec)
    got = [r["recovery_s"] for r in out if r["recovery_s"] is not None]
    print(json.dumps({
        "baseline_per_s": round(base, 1),
        "events": out,
        "measured": len(got),
        "median_s": round(statistics.median(got), 1) if got else None,
        "max_s": max(got) if got else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
