#!/bin/sh
# Installs lucid's build and test dependencies from Debian's packages when any is missing.
# Runs apt-get directly as root, through sudo otherwise.
set -e
PKGS="lua5.4 liblua5.4-dev libopenblas-dev zlib1g-dev lua-busted pkg-config gcc make dataset-fashion-mnist clang fortunes libprotobuf-c-dev protobuf-c-compiler libonnx-testdata python3-onnx libopenmpi-dev openmpi-bin"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
