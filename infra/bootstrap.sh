#!/usr/bin/env bash
# Idempotent setup for a fresh clone: system packages (Java, Maven, Redis, PostgreSQL), the .venv with the
# given extras, and the Kafka broker jars (Maven Central, cached outside the repo). Safe to run every time:
# each step is skipped when already done.
#   infra/bootstrap.sh [EXTRAS]      e.g. infra/bootstrap.sh train,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

say() { printf '\033[36m[bootstrap]\033[0m %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------------
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
# promtool/prometheus test the alert rules and dashboards; chromium + its driver run the console's browser tests.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if ((${#missing[@]})); then
  say "installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "error: missing ${missing[*]} and not root; install them with your package manager" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
fi

# --- Python environment ----------------------------------------------------------------------------
python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "error: sentimon needs Python >= 3.11 ($python is $("$python" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
}
[ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
stamp=".venv/.sentimon-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) extras=[${extras}]"
if [ ! -f "$stamp" ] || ! grep -qxF -- "$want" "$stamp"; then
  say "installing sentimon into .venv (extras: ${extras:-none}); pip's cache makes reruns fast"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  # A later bootstrap with fewer extras keeps what is installed: remember every extras set seen.
  echo "$want" >> "$stamp"
fi

# --- Kafka broker jars -----------------------------------------------------------------------------
.venv/bin/python -m sentimon.infra fetch
