#!/usr/bin/env bash
# Renders k8s/base from the charts' defaults (the plain manifests are the chart, not a second copy
# to keep in step): the CRD and `helm template` of charts/distill-mesh with the token taken from an
# existing Secret "distill-token" (each overlay says where that comes from). A test renders it
# again and fails when the committed files differ.
#   build/render-k8s.sh [OUT]    (default: k8s/base)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/k8s/base}"
helm="${DISTILL_HELM:-$root/.tools/helm/helm}"
[ -x "$helm" ] || { echo "render-k8s: no helm at $helm (run scripts/setup.sh)" >&2; exit 1; }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export HELM_CACHE_HOME="$scratch/cache" HELM_CONFIG_HOME="$scratch/config" HELM_DATA_HOME="$scratch/data"
mkdir -p "$out"
cp "$root/charts/distill-mesh-crds/templates/distillationrun-crd.yaml" "$out/distillationrun-crd.yaml"
{
  echo "# Rendered by build/render-k8s.sh from charts/distill-mesh (defaults, auth.existingSecret=distill-token). Do not edit."
  "$helm" template distill-mesh "$root/charts/distill-mesh" --namespace distill --skip-tests --set auth.existingSecret=distill-token
} > "$out/distill-mesh.yaml"
