#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian/Ubuntu machine (idempotent):
#   patchelf, binutils, g++  - the build patches TorchSharp's native library on Debian 12 (see build/)
#   redis-server             - the teacher-signal cache the integration tests run against
# The .NET 10 SDK itself is expected on PATH.
set -euo pipefail

packages=()
command -v patchelf >/dev/null || packages+=(patchelf)
command -v readelf >/dev/null || packages+=(binutils)
command -v g++ >/dev/null || packages+=(g++)
command -v redis-server >/dev/null || packages+=(redis-server)

if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required on PATH" >&2; exit 1; }
