#!/usr/bin/env bash
# Installs pnpm (if missing) and the workspace dependencies from the lock file. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=10.34.9
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "installing pnpm $PNPM_VERSION" >&2
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 \
    || { COREPACK_INTEGRITY_KEYS=0 corepack enable && COREPACK_INTEGRITY_KEYS=0 corepack prepare "pnpm@$PNPM_VERSION" --activate; }
fi
pnpm install --frozen-lockfile --reporter=silent
