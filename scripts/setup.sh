#!/usr/bin/env bash
# Idempotent set-up of everything resilinet-mcu needs on a Debian machine:
# Debian packages (cross compiler, newlib, QEMU, Fashion-MNIST, ser2net for remote boards) and the Python venv.
# Re-running it does nothing when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist ser2net
              gcc libc6-dev xz-utils)  # gcc, xz: the cycle-estimate QEMU plugin (below)
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

# qemu-plugin.h for the cycle-estimate QEMU plugin (codegen/qemu_plugin/, docs/cycle-estimate.md; codegen/cycles.py
# builds the plugin lazily): Debian's QEMU supports plugins but ships no header; it is in the qemu source package.
# Needs deb-src lines (added once, from the deb lines in use); only the header is kept. Offline: a warning, and
# the cycle estimate reports one error naming this step.
PLUGIN_H=.cache/qemu-plugin/qemu-plugin.h  # codegen/cycles.py looks here
if [ ! -s "$PLUGIN_H" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        | $SUDO tee /etc/apt/sources.list.d/resilinet-deb-src.sources >/dev/null
    elif [ -f /etc/apt/sources.list ]; then
      grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
        | $SUDO tee /etc/apt/sources.list.d/resilinet-deb-src.list >/dev/null
    fi
  fi
  src_tmp=$(mktemp -d)
  fetch_qemu_source() { (cd "$src_tmp" && apt-get source --download-only -qq qemu >/dev/null 2>&1); }
  if fetch_qemu_source || { $SUDO apt-get update -qq && fetch_qemu_source; }; then
    mkdir -p "$(dirname "$PLUGIN_H")"
    tar -xJOf "$src_tmp"/qemu_*.orig.tar.xz --wildcards '*/include/qemu/qemu-plugin.h' > "$PLUGIN_H.tmp"
    mv "$PLUGIN_H.tmp" "$PLUGIN_H"
    echo "setup: $PLUGIN_H from Debian's qemu source package"
  else
    echo "setup: warning: could not download Debian's qemu source package (offline, or no deb-src lines):" \
         "the cycle estimate (codegen/cycles.py) needs $PLUGIN_H; re-run scripts/setup.sh online" >&2
  fi
  rm -rf "$src_tmp"
fi

# PlatformIO without its registry (`pio run` / `pio run -t upload` on the committed platformio.ini, which
# reads the latest host.build's environments from build/current): a project-local core dir .pio-core (git-ignored) with tool-scons made from the venv's SCons,
# a toolchain package linking the system's arm-none-eabi-*, telemetry and upgrade checks off.
# Idempotent and quiet when already in place; prints what it changed.
"$VENV/bin/python" -m host.deploy.pio_project prepare
