#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# HTTPS through libmicrohttpd (http.tls.cert, http.tls.key) with a
# self-signed certificate made here by openssl: /healthz, /status, the
# admin actions and /events answer over TLS and verify against the
# certificate; plain HTTP on the same port gets no HTTP answer; a missing
# key or an unreadable certificate stops start-up with the key named.
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl is not installed"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.log" ||
        fail "openssl could not make a certificate"

# Bad TLS configuration is refused at start-up, naming the key.
set +e
"$consumer_bin" --embedded-broker --http-port auto -X http.tls.cert="$work/cert.pem" \
        >/dev/null 2>"$work/nokey.log"
rc=$?
set -e
assert_eq "exit code without http.tls.key" "$rc" 2
grep -q "http.tls.cert and http.tls.key go together" "$work/nokey.log" ||
        fail "no clear error without the key: $(cat "$work/nokey.log")"
set +e
"$consumer_bin" --embedded-broker --http-port auto -X http.tls.cert="$work/missing.pem" \
        -X http.tls.key="$work/key.pem" >/dev/null 2>"$work/missing.log"
rc=$?
set -e
((rc != 0)) || fail "started with a missing certificate file"
grep -q "http.tls.cert=$work/missing.pem: cannot open" "$work/missing.log" ||
        fail "no clear error for a missing certificate: $(cat "$work/missing.log")"
echo "not a certificate" >"$work/junk.pem"
set +e
timeout 30 "$consumer_bin" --embedded-broker --http-port auto -X http.tls.cert="$work/junk.pem" \
        -X http.tls.key="$work/junk.pem" >/dev/null 2>"$work/junk.log"
rc=$?
set -e
((rc != 0 && rc != 124)) || fail "started (or hung) with a certificate that is not PEM (rc $rc)"
grep -q "could not start the HTTP server" "$work/junk.log" ||
        fail "no clear error for a junk certificate: $(cat "$work/junk.log")"
log "ok: bad TLS settings refused at start-up with the key or file named"

start_consumer c1 --embedded-broker -X http.tls.cert="$work/cert.pem" \
        -X http.tls.key="$work/key.pem" -X http.admin.token=tls-token
url=${c1_http/http:/https:}
wait_until 30 "GET /readyz over TLS answers 200" -- value_is == 200 \
        curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" "$url/readyz"
assert_eq "GET /readyz over TLS" "$wait_seen" 200
assert_eq "GET /healthz over TLS" "$(curl -s --cacert "$work/cert.pem" "$url/healthz")" ok
assert_eq "/status says tls" \
        "$(curl -s --cacert "$work/cert.pem" "$url/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["http"]["tls"])')" True
# The certificate is the one we made (not merely "some TLS").
fp_want=$(openssl x509 -in "$work/cert.pem" -noout -fingerprint -sha256)
fp_got=$(openssl s_client -connect "${url#https://}" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256)
assert_eq "served certificate" "$fp_got" "$fp_want"
# Plain HTTP to the TLS port gets no HTTP response.
plain=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$c1_http/healthz" || true)
[[ "$plain" != 200 ]] || fail "plain HTTP answered 200 on the TLS port"
log "ok: plain HTTP refused on the TLS port (curl: $plain)"
assert_eq "admin over TLS, wrong token" "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" \
        -X POST -H 'Authorization: Bearer nope' "$url/admin/pause")" 401
assert_eq "admin over TLS" "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" \
        -X POST -H 'Authorization: Bearer tls-token' "$url/admin/pause")" 202
assert_eq "resume over TLS" "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/cert.pem" \
        -X POST -H 'Authorization: Bearer tls-token' "$url/admin/resume")" 202

# Server-Sent Events over TLS: the tasks' events arrive.
seq -f 'tls-%06g' 1 20 >"$work/ids"
python3 "$src/tests/integration/sse_client.py" "$url/events?since=0" --cafile "$work/cert.pem" \
        --out "$work/sse.jsonl" --until-ids "$work/ids" --timeout 60 \
        --ready-file "$work/sse.ready" 2>"$work/sse.log" &
sse_pid=$!
sq_pids+=("$sse_pid")
sq_wait_line "$work/sse.ready" ready 10 >/dev/null || fail "SSE client did not connect over TLS: $(cat "$work/sse.log")"
producer -q submit --count 20 --type echo --payload x --id-prefix tls || fail "submit failed"
sq_wait_exit "$sse_pid" 60 || fail "SSE over TLS did not deliver the events: $(cat "$work/sse.log")"
log "ok: /events over TLS delivered $(grep -c '"message"' "$work/sse.jsonl") events"

stop_consumers c1
log "passed"
