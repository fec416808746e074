#!/bin/sh
# Install Debian's mosquitto broker (and mosquitto_passwd) for the real-broker tests; safe to run twice.
# The tests start their own mosquitto on an ephemeral loopback port with a generated password file
# and ACL (tests/runtime/control/mosquitto_broker.py), so the system service is not needed: it is
# disabled where systemd runs it, so it does not sit on port 1883.
set -eu
if command -v mosquitto >/dev/null 2>&1 && command -v mosquitto_passwd >/dev/null 2>&1; then
    echo "mosquitto already installed: $(mosquitto -h 2>/dev/null | head -n 1)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install-mosquitto: not root and no sudo; the mosquitto tests will be skipped" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-mosquitto: no apt-get here; install mosquitto by hand or the tests are skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends mosquitto || {
    $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends mosquitto
}
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
echo "installed: $(mosquitto -h 2>/dev/null | head -n 1)"
