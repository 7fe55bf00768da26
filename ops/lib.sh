# SPDX-License-Identifier: Apache-2.0
#
# Shell helpers shared by ops/demo.sh, the integration tests and the
# benchmarks: start a consumer or a mock broker in the background, read the
# machine-readable lines they print, fetch an HTTP path, clean up on exit.
# Source it; it defines functions only.

# sq_wait_line FILE KEY [TIMEOUT_S]: prints the value of the first
# "KEY=value" line in FILE once it appears (the process writes it).
sq_wait_line() {
        local file=$1 key=$2 timeout=${3:-30} i line
        for ((i = 0; i < timeout * 10; i++)); do
                line=$(grep -m1 "^$key=" "$file" 2>/dev/null || true)
                if [[ -n "$line" ]]; then
                        echo "${line#"$key"=}"
                        return 0
                fi
                sleep 0.1
        done
        echo "timed out after ${timeout}s waiting for '$key=' in $file" >&2
        return 1
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

# sq_wait_exit PID TIMEOUT_S: waits for a background child; prints nothing,
# returns its exit status, or 124 when it is still running at the timeout.
sq_wait_exit() {
        local pid=$1 timeout=$2 i
        for ((i = 0; i < timeout * 10; i++)); do
                if ! kill -0 "$pid" 2>/dev/null; then
                        wait "$pid"
                        return $?
                fi
                sleep 0.1
        done
        return 124
}
