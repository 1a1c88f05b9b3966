#!/usr/bin/env bash
# Controller bootstrap: the only step that must run before Ansible exists.
# Creates .venv with the pinned controller tools and two editable packages under the same constraints: the
# appliance's (pyproject.toml: claw) and SMEEP's (benchmarks/pyproject.toml: smeep).
# Idempotent: a stamp keyed on the dependency files skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
key=$(cat pyproject.toml benchmarks/pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
stamp="$venv/.bootstrapped-$key"
[ -f "$stamp" ] && exit 0

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "bootstrap: installing python3-venv" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap: ansible-core 2.19 needs Python >= 3.11 on the controller, found {sys.version.split()[0]}")
PY
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -c requirements/constraints.txt -e '.[dev]' -e ./benchmarks
# The Blinkt! libraries for the LED tests, without their dependencies as on the nodes: blinkt names the old RPi.GPIO,
# which would overwrite rpi-lgpio's RPi/GPIO, and lgpio is a compiled module the tests simulate (tests/doubles/gpio.py).
"$venv/bin/pip" install --quiet --no-deps -c requirements/constraints.txt blinkt rpi-lgpio
rm -f "$venv"/.bootstrapped-*
touch "$stamp"
echo "bootstrap: controller venv ready in $venv" >&2
