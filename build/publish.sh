#!/usr/bin/env bash
# Publishes services the way their images do (Release, linux-x64, framework-dependent, one folder
# per service). The Dockerfile runs this same script, so CI's publish proves what the images copy.
#   build/publish.sh OUT_DIR [controller|teacher|trainer|registry|extractor ...]   (default: all)
#   TORCH_BACKEND=cuda build/publish.sh ...    GPU build (TorchSharp-cuda-linux: needs nuget.org)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: build/publish.sh OUT_DIR [service ...]}
shift
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(controller teacher trainer registry extractor)
backend=${TORCH_BACKEND:-cpu}
for service in "${services[@]}"; do
  case "$service" in
    controller) project=Controller ;;
    teacher) project=Teacher ;;
    trainer) project=Trainer ;;
    registry) project=Registry ;;
    extractor) project=Extractor ;;
    *) echo "publish: unknown service '$service' (controller, teacher, trainer, registry, extractor)" >&2; exit 2 ;;
  esac
  dotnet publish "$root/services/Distill.Mesh.$project/Distill.Mesh.$project.csproj" -c Release -r linux-x64 --self-contained false \
    -p:TorchBackend="$backend" -nologo -v quiet -o "$out/$service"
  # Symbols stay in the build folders (a global DebugType=none would rebuild the shared libraries without them).
  find "$out/$service" -name '*.pdb' -delete
done
