#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/browser). Playwright
# drives it through executable_path; `playwright install` is not used (it downloads its own
# browser, which this project's machines cannot). Skips apt when a chromium is already there.
# As root it runs apt-get directly, otherwise through sudo when sudo works without a password.
# Under CI a browser that cannot be installed is an error; elsewhere a warning (the browser
# tests then skip and say why).
set -euo pipefail
find_chromium() {
  if [ -n "${SYNTHMED_CHROMIUM:-}" ] && [ -x "${SYNTHMED_CHROMIUM}" ]; then return 0; fi
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}
if find_chromium; then
  echo "[browser] chromium found: $(command -v chromium || command -v chromium-browser || echo "$SYNTHMED_CHROMIUM")"
  exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=(none)
  fi
fi
if [ "${as_root[0]:-}" != none ] && command -v apt-get >/dev/null 2>&1; then
  echo "[browser] installing Debian's chromium with apt-get (about 30 s)"
  export DEBIAN_FRONTEND=noninteractive
  if "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq chromium >/dev/null; then
    find_chromium && { echo "[browser] chromium installed"; exit 0; }
  fi
fi
msg="[browser] chromium is not installed and could not be installed (needs root or passwordless sudo, and apt-get)"
if [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then
  echo "$msg: CI needs it for tests/browser" >&2
  exit 1
fi
echo "$msg: the browser tests will skip" >&2
