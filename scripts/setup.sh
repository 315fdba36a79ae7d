#!/usr/bin/env bash
# Idempotent set-up of everything resilinet-mcu needs on a Debian machine:
# Debian packages (cross compiler, newlib, QEMU, Fashion-MNIST, ser2net for remote boards) and the Python venv.
# Re-running it does nothing when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist ser2net)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: preparing the Python environment in $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

# PlatformIO without its registry (`pio run` / `pio run -t upload` on the committed platformio.ini, which
# reads the latest host.build's environments from build/current): a project-local core dir .pio-core (git-ignored) with tool-scons made from the venv's SCons,
# a toolchain package linking the system's arm-none-eabi-*, telemetry and upgrade checks off.
# Idempotent and quiet when already in place; prints what it changed.
"$VENV/bin/python" -m host.deploy.pio_project prepare
