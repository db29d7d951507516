# Shared by the certs scripts: how to run the kernelchaos CLI.
# KERNELCHAOS overrides (e.g. "docker run --rm -v $PWD:/w -w /w ghcr.io/kernelchaos/kernelchaos:0.1.0").
kernelchaos_cmd() {
  if [ -n "${KERNELCHAOS:-}" ]; then
    # Word splitting is intended: KERNELCHAOS may be a command with arguments.
    # shellcheck disable=SC2086
    $KERNELCHAOS "$@"
  elif command -v kernelchaos >/dev/null 2>&1; then
    kernelchaos "$@"
  else
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [ ! -f "$repo/dist/cli/main.js" ]; then
      echo "kernelchaos CLI not found: install it, set KERNELCHAOS, or run 'npm run build' in $repo" >&2
      return 2
    fi
    node "$repo/bin/kernelchaos.js" "$@"
  fi
}
