# SPDX-License-Identifier: Apache-2.0
#
# Shell helpers shared by ops/demo.sh, the integration tests and the
# benchmarks: start a consumer or a mock broker in the background, read the
# machine-readable lines they print, fetch an HTTP path, clean up on exit.
# Source it; it defines functions only.

# wait_until TIMEOUT_S DESCRIPTION [--every S] [--no-fail] -- CMD [ARG...]:
# runs CMD (a command or a function, in this shell, so the variables it
# sets stay set; this function's own are named wu_*) every S seconds (0.1 by default) until it succeeds, and
# keeps what it printed on stdout the last time in $wait_seen. At the
# deadline it says "DESCRIPTION: still not so after TIMEOUT_S s (last
# seen: ...)": through the test's fail when one is defined (the test
# ends), otherwise, or with --no-fail, on stderr, returning 1. CMD's
# stderr is not captured: a fail inside CMD is shown.
wait_until() {
        local wu_timeout=$1 wu_what=$2 wu_every=0.1 wu_no_fail=0 wu_seen_file wu_now wu_deadline
        shift 2
        while [[ "$1" != -- ]]; do
                case $1 in
                --every) wu_every=$2 && shift 2 ;;
                --no-fail) wu_no_fail=1 && shift ;;
                *) echo "wait_until: unknown option '$1'" >&2 && return 2 ;;
                esac
        done
        shift
        wu_seen_file=$(mktemp "${TMPDIR:-/tmp}/sq_wait_until.XXXXXX")
        # Microseconds (EPOCHREALTIME without its point): a deadline to the
        # tenth, where SECONDS would cut up to a second off it.
        wu_now=${EPOCHREALTIME/./}
        wu_deadline=$((wu_now + ${wu_timeout%.*} * 1000000))
        while :; do
                if "$@" >"$wu_seen_file"; then
                        wait_seen=$(<"$wu_seen_file")
                        rm -f "$wu_seen_file"
                        return 0
                fi
                wu_now=${EPOCHREALTIME/./}
                ((wu_now < wu_deadline)) || break
                sleep "$wu_every"
        done
        wait_seen=$(<"$wu_seen_file")
        rm -f "$wu_seen_file"
        local wu_msg="$wu_what: still not so after ${wu_timeout} s (last seen: ${wait_seen:-nothing})"
        if ((!wu_no_fail)) && declare -F fail >/dev/null; then
                fail "$wu_msg"
        fi
        echo "$wu_msg" >&2
        return 1
}

# value_is OP WANT CMD [ARG...]: prints CMD's output (what wait_until shows
# as last seen) and succeeds when it is OP WANT: == and != compare text,
# -eq -ne -lt -le -gt -ge integers (output that is not one never matches).
# CMD runs in a subshell with its stderr discarded: a getter, not a check.
value_is() {
        local vi_op=$1 vi_want=$2 vi_got
        shift 2
        vi_got=$("$@" 2>/dev/null) || true
        printf '%s\n' "$vi_got"
        case $vi_op in
        ==) [[ "$vi_got" == "$vi_want" ]] ;;
        !=) [[ "$vi_got" != "$vi_want" ]] ;;
        *) [[ "$vi_got" =~ ^-?[0-9]+$ ]] && [ "$vi_got" "$vi_op" "$vi_want" ] ;;
        esac
}

# sq_wait_line FILE KEY [TIMEOUT_S]: prints the value of the first
# "KEY=value" line in FILE once it appears (the process writes it), or
# returns 1 after TIMEOUT_S (30) saying so on stderr.
sq_wait_line() {
        local file=$1 key=$2 timeout=${3:-30}
        wait_until "$timeout" "a '$key=' line in $file" --no-fail -- \
                grep -s -m1 "^$key=" "$file" || return 1
        echo "${wait_seen#"$key"=}"
}

# sq_http_request URL: opens fd 9 to URL's host and sends a GET for its
# path (no curl needed: bash /dev/tcp). The caller reads fd 9, closes it.
sq_http_request() {
        local url=$1 hostport path
        hostport=${url#http://}
        path=/${hostport#*/}
        [[ "$hostport" == */* ]] || path=/
        hostport=${hostport%%/*}
        exec 9<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 1
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&9
}

# sq_http_get URL: prints the body of a GET.
sq_http_get() {
        sq_http_request "$1" || return 1
        sed '1,/^\r$/d' <&9
        exec 9<&-
}

# sq_http_status URL: prints the HTTP status code of a GET.
sq_http_status() {
        sq_http_request "$1" || return 1
        head -1 <&9 | awk '{print $2}'
        exec 9<&-
}

# sq_wait_exit PID TIMEOUT_S: waits for a background child (at a timeout,
# prints its thread stacks to stderr); returns its exit status, or 124 when
# it is still running at the timeout.
sq_wait_exit() {
        local pid=$1 timeout=$2
        if ! wait_until "$timeout" "process $pid exits" --no-fail -- \
                sq_gone "$pid" 2>/dev/null; then
                sq_dump_stacks "$pid"
                return 124
        fi
        wait "$pid"
}

# sq_dump_stacks PID: prints every thread's stack of a process that does
# not exit (to stderr, when gdb is installed), so a hang that a test
# meets once leaves where it hung in the test's output.
sq_dump_stacks() {
        command -v gdb >/dev/null && kill -0 "$1" 2>/dev/null || return 0
        echo "---- threads of the stuck process $1 ($(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-120))" >&2
        timeout 60 gdb -p "$1" -batch -nx -ex 'thread apply all bt 30' 2>/dev/null |
                grep -E '^(Thread|#)' >&2 || true
}

# sq_gone PID: succeeds once the child PID of this shell is no longer
# running (see sq_our_child).
sq_gone() {
        ! sq_our_child "$1"
}

# sq_our_child PID: succeeds while PID is a running child of this shell.
# Once a child has exited, bash reaps it and its pid is free: with
# pid_max 32768 and tests side by side, another test's process may have
# it a moment later, so "kill -0 PID" or "kill -KILL PID" could mean that
# process (seen: a test's cleanup SIGKILLed another test's
# swarmq-producer). A zombie (exited, not yet reaped) is not running.
sq_our_child() {
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        stat=${stat##*) } # after the command name, which may hold spaces
        read -r -a stat <<<"$stat"
        [[ ${stat[0]} != Z && ${stat[1]} == "$$" ]]
}
