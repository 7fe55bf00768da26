#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The deploy files, without a container engine or a cluster:
# - docker-compose.yml, ops/Dockerfile and ops/k8s/*.yaml agree with each
#   other and with the binary (tests/integration/deploy_files_check.py):
#   services, images, ports, health checks, probes, the configuration each
#   gives swarmq (accepted by swarmq-consumer --dump-config), grace periods
#   longer than the drain deadline, runtime packages that hold every
#   library the installed binaries load. Planted mistakes must fail it.
# - ops/systemd/swarmq-consumer.service passes systemd-analyze verify with
#   its hardening, and a misspelt directive does not.
# - docker compose config and kubectl kustomize, where those clients exist.
source "$(dirname "$0")/lib.sh"

python=$(bash "$src/ops/venv.sh" | tail -n 1) || fail "ops/venv.sh failed"
checker=("$python" "$src/tests/integration/deploy_files_check.py")

"${checker[@]}" "$src" "$consumer_bin" >"$work/check.out" 2>&1 ||
        fail "deploy files: $(grep -E 'FAIL|Error|Traceback' -A3 "$work/check.out")"
log "ok: $(grep -c '^ok:' "$work/check.out") deploy checks passed"

# Planted mistakes in a copy of the files: each must be caught.
plant() {
        local what=$1 file=$2 expr=$3 expect=$4
        rm -rf "$work/tree"
        mkdir -p "$work/tree/ops"
        cp "$src/docker-compose.yml" "$work/tree/"
        cp -r "$src/ops/Dockerfile" "$src/ops/Dockerfile.dockerignore" "$src/ops/prometheus" \
                "$src/ops/grafana" "$src/ops/k8s" "$work/tree/ops/"
        sed -i "$expr" "$work/tree/$file"
        cmp -s "$src/$file" "$work/tree/$file" && fail "planting '$what' changed nothing"
        local skip=1
        [[ "$file" == ops/Dockerfile ]] && skip=
        if DEPLOY_CHECK_SKIP_LIBS=$skip "${checker[@]}" "$work/tree" "$consumer_bin" \
                >"$work/plant.out" 2>&1; then
                fail "planted mistake not caught: $what"
        fi
        grep -q "^FAIL: .*$expect" "$work/plant.out" ||
                fail "planted '$what': expected a failure about '$expect', got: $(grep FAIL "$work/plant.out")"
        log "ok: caught $what"
}
plant "a runtime library missing from the image" ops/Dockerfile 's/ libavro23//' 'every library'
plant "a compose grace period shorter than the drain" docker-compose.yml \
        's/stop_grace_period: 60s/stop_grace_period: 20s/' 'stop_grace_period'
plant "a k8s grace period shorter than the drain" ops/k8s/deployment.yaml \
        's/terminationGracePeriodSeconds: 60/terminationGracePeriodSeconds: 30/' 'terminationGracePeriodSeconds'
plant "an unknown configuration key in the ConfigMap" ops/k8s/configmap.yaml \
        's/executor.threads=4/executor.thread=4/' 'dump-config accepts'
plant "consumers bound to loopback" docker-compose.yml \
        's/SWARMQ_HTTP_BIND: 0.0.0.0/SWARMQ_HTTP_BIND: 127.0.0.1/' 'binds HTTP on 0.0.0.0'
plant "a readiness probe on /healthz" ops/k8s/deployment.yaml \
        '/readinessProbe:/,/path:/s#path: /readyz#path: /healthz#' 'readiness probe'
plant "Prometheus scraping a consumer that does not exist" ops/prometheus/prometheus.yml \
        's/consumer-3:8080/consumer-4:8080/' 'scrapes exactly'

# systemd: verify the shipped unit in a scratch root that holds the
# binary, kill and the system's targets and slices (copies: the system's
# absolute symlinks would loop under --root).
unit=$src/ops/systemd/swarmq-consumer.service
verify_unit() {
        local file=$1 root=$work/sysroot
        rm -rf "$root"
        mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd/system" \
                "$root/bin"
        cp "$consumer_bin" "$root/usr/local/bin/swarmq-consumer"
        cp /bin/kill "$root/bin/kill"
        find /usr/lib/systemd/system -maxdepth 1 -type f \( -name '*.target' -o -name '*.slice' \) \
                -exec cp {} "$root/usr/lib/systemd/system/" \;
        cp "$file" "$root/etc/systemd/system/swarmq-consumer.service"
        systemd-analyze verify --root="$root" swarmq-consumer.service >"$work/verify.out" 2>&1 ||
                return 1
        # Unknown or misspelt directives are only warnings: count them too.
        ! grep -q 'swarmq-consumer.service' "$work/verify.out"
}
if command -v systemd-analyze >/dev/null; then
        verify_unit "$unit" || fail "systemd-analyze verify: $(cat "$work/verify.out")"
        log "ok: systemd-analyze verify $unit"
        sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$unit" >"$work/bad.service"
        verify_unit "$work/bad.service" && fail "systemd-analyze verify accepted a misspelt directive"
        log "ok: a misspelt directive fails verification ($(grep -m1 -o "Unknown key.*" "$work/verify.out"))"
        score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null |
                sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        [[ -n "$score" ]] || fail "systemd-analyze security printed no exposure level"
        awk -v s="$score" 'BEGIN { exit !(s < 3.0) }' ||
                fail "systemd-analyze security exposure $score is not below 3.0"
        log "ok: systemd-analyze security exposure level $score (lower is safer; 10 = unprotected)"
else
        fail "systemd-analyze missing: run bash ops/deps.sh --test"
fi
drain_ms=$("$consumer_bin" --dump-config -c "$src/ops/swarmq.properties.example" |
        sed -n 's/^shutdown.drain.timeout.ms=//p')
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
((stop_s * 1000 >= drain_ms + 15000)) ||
        fail "TimeoutStopSec=${stop_s}s is not 15 s above shutdown.drain.timeout.ms=$drain_ms of ops/swarmq.properties.example"
log "ok: TimeoutStopSec ${stop_s} s >= drain $((drain_ms / 1000)) s + 15 s"
for directive in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes \
        ProtectHome=yes SystemCallFilter=@system-service 'ExecReload=/bin/kill -HUP $MAINPID' \
        KillSignal=SIGTERM; do
        grep -qxF "$directive" "$unit" || fail "$unit lacks $directive"
done
grep -q '^RestrictAddressFamilies=AF_INET AF_INET6' "$unit" || fail "$unit lacks RestrictAddressFamilies"
log "ok: hardening directives present"

if docker compose version >/dev/null 2>&1; then
        (cd "$src" && docker compose config -q) >"$work/compose.out" 2>&1 ||
                fail "docker compose config: $(cat "$work/compose.out")"
        log "ok: docker compose config"
else
        log "SKIPPED: docker compose config (this docker client has no compose plugin; the parse checks above ran)"
fi
if command -v kubectl >/dev/null; then
        kubectl kustomize "$src/ops/k8s" >"$work/k8s.yaml" 2>"$work/kustomize.err" ||
                fail "kubectl kustomize ops/k8s: $(cat "$work/kustomize.err")"
        assert_eq "kinds rendered by kubectl kustomize" \
                "$(grep '^kind:' "$work/k8s.yaml" | sort | tr '\n' ' ')" \
                "kind: ConfigMap kind: Deployment kind: PodDisruptionBudget kind: Service "
else
        log "SKIPPED: kubectl kustomize (no kubectl)"
fi
log "PASS"
