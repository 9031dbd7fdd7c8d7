#!/usr/bin/env bash
# Debian packages the tests and the live lab start:
#   - Prometheus (with promtool) and Alertmanager, for the integration tests;
#   - Chromium, for the web console's browser tests;
#   - the lab's dependencies and exporters (nginx, stress-ng, iproute2 and the Prometheus exporters).
# Idempotent: does nothing when they are already installed.
set -euo pipefail
declare -A wanted=(
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [nginx]=nginx
  [stress-ng]=stress-ng
  [ip]=iproute2
  [prometheus-node-exporter]=prometheus-node-exporter
  [prometheus-process-exporter]=prometheus-process-exporter
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [prometheus-nginx-exporter]=prometheus-nginx-exporter
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || missing+=("${wanted[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install: ${missing[*]} (or install them yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's packages start their daemons through policy-rc.d when one is allowed; the lab and the tests
# start their own instances on their own ports, so keep the packaged services from starting.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
