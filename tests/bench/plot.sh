#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# PNG plots of the tables ops/bench.sh prints, with gnuplot (Debian
# gnuplot-nox):
#
#   tests/bench/plot.sh RESULTS.md PREFIX
#
# writes PREFIX-keysweep.png (wall time ÷ floor per mode, the bare
# threads, swarmq and parallel-consumer, log scale, the 1.2× goal drawn)
# when RESULTS.md has a key sweep table, and PREFIX-pipe.png (records in/s and CPU-seconds per
# 100,000, raw pipe vs swarmq) when it has a pipe table; prints the name of
# each PNG written. Exit 77 when gnuplot is missing.
set -euo pipefail
results=${1:?usage: plot.sh RESULTS.md PREFIX}
prefix=${2:?usage: plot.sh RESULTS.md PREFIX}
command -v gnuplot >/dev/null || {
        echo "plot: gnuplot not found (bash ops/deps.sh --bench, or apt-get install -y gnuplot-nox): no plots" >&2
        exit 77
}
work=$(mktemp -d /tmp/swarmq-plot.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Key sweep rows: | mode | conc | floor | bare | sq | sq/floor | sq/bare | pc |
# pc/floor | sq/pc |
awk -F'|' '$3 ~ /^ [0-9]+ $/ && NF >= 12 {
        m = $2; gsub(/^ +| +$/, "", m); sub(/ \(.*/, "", m); sub(/, /, " ", m)
        c = $3; gsub(/ /, "", c)
        pc = $10; gsub(/ /, "", pc); if (pc !~ /^[0-9.]+$/) pc = "NaN"
        sq = $7; gsub(/ /, "", sq)
        bare = ($4 + 0 > 0) ? sprintf("%.2f", $5 / $4) : "NaN"
        printf "\"%s c%s\" %s %s %s\n", m, c, sq, pc, bare }' "$results" >"$work/sweep.dat"
if [[ -s "$work/sweep.dat" ]]; then
        gnuplot <<EOF
set terminal pngcairo size 1000,480 font ",10"
set output "$prefix-keysweep.png"
set title "Key sweep: wall time ÷ work floor (lower is better; goal ≤ 1.2)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.5:*]
set ylabel "× floor"
set xtics rotate by -30 scale 0
set grid ytics
set key top left
plot "$work/sweep.dat" using 4:xtic(1) title "bare threads, no Kafka (the machine)", \
     "" using 2 title "swarmq", \
     "" using 3 title "parallel-consumer 0.5.3.3", \
     1.2 with lines dashtype 2 lc rgb "black" title "1.2× goal"
EOF
        echo "$prefix-keysweep.png"
fi

# Pipe rows: | pipeline | in/s | CPU per 100k | ... |
awk -F'|' '($2 ~ /raw librdkafka/ || $2 ~ /swarmq, noop/) && $3 ~ /^ [0-9]+ $/ {
        n = $2; gsub(/^ +| +$/, "", n)
        if (n ~ /^raw/) {
                k = n; sub(/^raw librdkafka, /, "", k); sub(/ records? out.*/, "", k)
                n = "pipe 1→" k
        } else if (n ~ /events.publish=/) {
                m = n; sub(/.*events.publish=/, "", m); sub(/[),].*/, "", m)
                n = "swarmq " m (n ~ /baseline build/ ? " (baseline)" : "")
        } else n = "swarmq"
        r = $3; c = $4; gsub(/ /, "", r); gsub(/ /, "", c)
        printf "\"%s\" %s %s\n", n, r, c }' "$results" >"$work/pipe.dat"
if [[ -s "$work/pipe.dat" ]]; then
        gnuplot <<EOF
set terminal pngcairo size 1200,420 font ",10"
set output "$prefix-pipe.png"
set multiplot layout 1,2 title "swarmq vs the raw librdkafka pipe, same broker, same run"
set xtics rotate by -30 scale 0
set style data histograms
set style fill solid 0.8 border -1
set style histogram clustered gap 1
set grid ytics
set key off
set yrange [0:*]
set title "records in per second"
plot "$work/pipe.dat" using 2:xtic(1)
set title "CPU-seconds per 100,000 records in"
plot "$work/pipe.dat" using 3:xtic(1)
unset multiplot
EOF
        echo "$prefix-pipe.png"
fi

# Latency rows: | 10 % | asked/s | achieved/s | tasks | p50 | p99 | p99.9 |
awk -F'|' '$2 ~ /^ [0-9]+ % $/ && NF == 9 {
        l = $2; gsub(/^ +| +$/, "", l); g = $4; gsub(/ /, "", g)
        printf "\"%s (%s/s)\" %d %d %d\n", l, g, $6, $7, $8 }' "$results" >"$work/latency.dat"
if [[ -s "$work/latency.dat" ]]; then
        gnuplot <<EOF
set terminal pngcairo size 900,420 font ",10"
set output "$prefix-latency.png"
set title "swarmq: submit to result visible, one instance, real Kafka (lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [1:*]
set ylabel "ms"
set xlabel "load: share of the maximum throughput (results/s achieved)"
set grid ytics
set key top left
plot "$work/latency.dat" using 2:xtic(1) title "p50", \
     "" using 3 title "p99", \
     "" using 4 title "p99.9"
EOF
        echo "$prefix-latency.png"
fi
