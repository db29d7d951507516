#!/usr/bin/env bash
# Generates (or renews, only when needed) every certificate kernelchaos uses, under OUT_DIR:
#   ca/                     ca.crt, ca.key          the CA (1 year)
#   webhook/                tls.crt, tls.key, ca.crt serving cert of the admission webhook Service
#   companion/              tls.crt, tls.key, ca.crt companion gRPC server (also a client: serverAuth+clientAuth)
#   client-<cn>/            tls.crt, tls.key, ca.crt mTLS client certs for the companion gRPC
# Leaves live 30 days and are reissued when < 1/3 of their lifetime is left, when a SAN is missing,
# or when the CA changed. Idempotent: run it from cron or CI as often as you like.
#
# Usage: certs-scripts/gen-certs.sh [OUT_DIR]        (default: ./certs)
# Env:   NAMESPACE (kernelchaos-system), WEBHOOK_SERVICE (kernelchaos-webhook),
#        COMPANION_SERVICE (kernelchaos-companion), CLIENT_CNS ("kernelchaos-controller kernelchaos-cli"),
#        EXTRA_DNS / EXTRA_IPS (space-separated extra SANs for the webhook), KERNELCHAOS (CLI command)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

out="${1:-certs}"
ns="${NAMESPACE:-kernelchaos-system}"
webhook_service="${WEBHOOK_SERVICE:-kernelchaos-webhook}"
companion_service="${COMPANION_SERVICE:-kernelchaos-companion}"
client_cns="${CLIENT_CNS:-kernelchaos-controller kernelchaos-cli}"

extra=()
for d in ${EXTRA_DNS:-}; do extra+=(--dns "$d"); done
for i in ${EXTRA_IPS:-}; do extra+=(--ip "$i"); done

mkdir -p "$out"
chmod 700 "$out"
kernelchaos_cmd certs renew-if-needed --ca-dir "$out/ca"
kernelchaos_cmd certs renew-if-needed --ca-dir "$out/ca" --service "$webhook_service" --namespace "$ns" \
  --out "$out/webhook" ${extra[@]+"${extra[@]}"}
kernelchaos_cmd certs renew-if-needed --ca-dir "$out/ca" --cn "$companion_service" --server-auth \
  --dns "$companion_service" --dns "$companion_service.$ns" --dns "$companion_service.$ns.svc" \
  --dns "$companion_service.$ns.svc.cluster.local" --out "$out/companion"
for cn in $client_cns; do
  kernelchaos_cmd certs renew-if-needed --ca-dir "$out/ca" --cn "$cn" --out "$out/client-$cn"
done
