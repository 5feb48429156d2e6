#!/usr/bin/env bash
# Set up art_he on a fresh Debian/Ubuntu machine: Fashion-MNIST from Debian, then a virtual environment in .venv.
# Usage: ./setup.sh            (idempotent; set ART_HE_VENV to use another folder)
set -euo pipefail
cd "$(dirname "$0")"
venv="${ART_HE_VENV:-.venv}"

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist python3-venv >/dev/null
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch unpinned: pip takes the registry build, whose torchvision matches (see shared environment notes)
# the filter hides setuptools' "Editable installation" notice, a boxed warning about flat layouts
PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/python" -m pip install -q -e ".[test]"
echo "art_he is set up in $venv"
