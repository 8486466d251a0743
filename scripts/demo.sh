#!/usr/bin/env bash
# The main job on embedded defaults: `distill demo` (teacher trained on generated data and cached,
# student distilled with KD and with plain fine-tuning, comparison table). No network, no GPU.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec "$root/scripts/distill" demo "$@"
