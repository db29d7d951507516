#!/usr/bin/env bash
# The self-managed certificate path (without cert-manager; see manifests/webhook/README.md): puts the
# certificates from gen-certs.sh into the cluster and the CA into the webhook configurations.
# Safe to re-run (create --dry-run=client | apply): after a renewal it updates the Secrets, and the
# webhook reloads its certificate from the mounted Secret without a restart.
# CA rotation: the webhook configurations are updated first, with the CA already in the cluster's
# caBundle kept next to the new one (expired CAs dropped), and only then the Secrets: the apiserver
# trusts the new serving certificate before any webhook pod serves it, and the old one until then.
#
# Usage: certs-scripts/install-secrets.sh [CERT_DIR] [WEBHOOK_CONFIGS]
#        defaults: ./certs, manifests/admission/webhook-configurations.yaml
# Env:   NAMESPACE (kernelchaos-system), KUBECTL (kubectl), KERNELCHAOS (CLI command)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

dir="${1:-certs}"
configs="${2:-$here/../manifests/admission/webhook-configurations.yaml}"
ns="${NAMESPACE:-kernelchaos-system}"
kubectl="${KUBECTL:-kubectl}"

for f in "$dir/ca/ca.crt" "$dir/webhook/tls.crt" "$dir/webhook/tls.key"; do
  [ -f "$f" ] || { echo "missing $f: run certs-scripts/gen-certs.sh $dir first" >&2; exit 2; }
done

apply_tls_secret() { # name dir
  $kubectl -n "$ns" create secret generic "$1" --type=kubernetes.io/tls \
    --from-file=tls.crt="$2/tls.crt" --from-file=tls.key="$2/tls.key" --from-file=ca.crt="$2/ca.crt" \
    --dry-run=client -o yaml | $kubectl apply -f -
}

$kubectl create namespace "$ns" --dry-run=client -o yaml | $kubectl apply -f -

# The webhook configurations with caBundle set on every webhook entry: the live bundle (if any) + the new CA.
live="$(mktemp)"
trap 'rm -f "$live"' EXIT
for kind in mutatingwebhookconfiguration validatingwebhookconfiguration; do
  $kubectl get "$kind" kernelchaos -o 'jsonpath={.webhooks[0].clientConfig.caBundle}' 2>/dev/null | base64 -d >>"$live" 2>/dev/null || true
done
keep=()
grep -q 'BEGIN CERTIFICATE' "$live" && keep=(--ca "$live")
kernelchaos_cmd certs inject-ca-bundle "${keep[@]}" --ca "$dir/ca/ca.crt" -f "$configs" | $kubectl apply -f -

$kubectl -n "$ns" create secret tls kernelchaos-webhook-tls \
  --cert="$dir/webhook/tls.crt" --key="$dir/webhook/tls.key" --dry-run=client -o yaml | $kubectl apply -f -
[ -d "$dir/companion" ] && apply_tls_secret kernelchaos-companion-tls "$dir/companion"
for client in "$dir"/client-*; do
  [ -d "$client" ] || continue
  cn="$(basename "$client")"; cn="${cn#client-}"
  apply_tls_secret "kernelchaos-${cn#kernelchaos-}-client-tls" "$client"
done
