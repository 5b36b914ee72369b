#!/usr/bin/env bash
# Install the web editor's pinned npm packages (package-lock.json) into web/node_modules, which the
# server serves at /vendor/. Offline after this: no build step, no CDN. With --test, also make sure
# Debian's Chromium is at /usr/bin/chromium for the browser tests (never a Playwright browser download).
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.diffgraph-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  if ! command -v npm >/dev/null; then
    echo "error: npm is needed to install the web editor's packages (Debian: apt-get install npm)" >&2
    exit 1
  fi
  # --ignore-scripts: our dependencies need no install scripts, so none may run.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

if [ "${1:-}" = "--test" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "error: the browser tests need /usr/bin/chromium (Debian: apt-get install chromium)" >&2
    exit 1
  fi
fi
