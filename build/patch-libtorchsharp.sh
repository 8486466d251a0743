#!/usr/bin/env bash
# Makes TorchSharp's native library load on systems whose libstdc++ predates GLIBCXX_3.4.32
# (Debian 12 ships GCC 12). libLibTorchSharp.so needs that version for a single symbol,
# std::ios_base_library_init(). We patch the copy in a build output, never the NuGet cache:
#   1. build a shim library that defines the symbol,
#   2. clear that symbol's version requirement,
#   3. mark the GLIBCXX_3.4.32 requirement weak, so the loader tolerates its absence,
#   4. add the shim as NEEDED (found through the library's $ORIGIN runpath).
# Idempotent; does nothing where the system libstdc++ already has the version.
# Usage: patch-libtorchsharp.sh <folder holding libLibTorchSharp.so>
set -euo pipefail

native_dir=${1:?usage: patch-libtorchsharp.sh NATIVE_DIR}
lib="$native_dir/libLibTorchSharp.so"
shim_name=libdistill_glibcxx_shim.so
symbol=_ZSt21ios_base_library_initv
version=GLIBCXX_3.4.32
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ -f "$lib" ] || { echo "patch-libtorchsharp: no $lib" >&2; exit 1; }

system_libstdcxx=$(/sbin/ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
[ -n "$system_libstdcxx" ] || system_libstdcxx=/usr/lib/x86_64-linux-gnu/libstdc++.so.6
if grep -qa "$version" "$system_libstdcxx"; then
  exit 0  # a new enough libstdc++: nothing to fix
fi

if [[ $(readelf -d "$lib") == *"[$shim_name]"* ]]; then
  exit 0  # already patched
fi

for tool in patchelf readelf g++; do
  command -v "$tool" >/dev/null || {
    echo "patch-libtorchsharp: '$tool' is required to make TorchSharp load on this system" \
         "(libstdc++ lacks $version); install it (apt-get install patchelf binutils g++)" >&2
    exit 1
  }
done

g++ -shared -fPIC -O2 -o "$native_dir/$shim_name.tmp" "$here/glibcxx-shim.cpp"
mv -f "$native_dir/$shim_name.tmp" "$native_dir/$shim_name"

work="$lib.patching"
cp -f "$lib" "$work"
patchelf --clear-symbol-version "$symbol" "$work"
patchelf --add-needed "$shim_name" "$work"

# Set VER_FLG_WEAK (0x2) in the vna_flags field (byte 4 of the Elf64_Vernaux entry) of the
# GLIBCXX_3.4.32 requirement. Offsets come from readelf after patchelf has moved things.
# (readelf's output is read whole first: an early-exiting reader would SIGPIPE it under pipefail.)
versions=$(readelf -V -W "$work")
section_offset=$(awk '/Version needs section/ {getline; for (i = 1; i <= NF; i++) if ($i == "Offset:") {print $(i + 1); exit}}' <<<"$versions")
entry_offset=$(awk -v v="$version" '$2 == "Name:" && $3 == v {sub(":", "", $1); print $1; exit}' <<<"$versions")
if [ -z "$section_offset" ] || [ -z "$entry_offset" ]; then
  echo "patch-libtorchsharp: could not find the $version requirement in $lib" >&2
  rm -f "$work"
  exit 1
fi
flags_at=$(( section_offset + entry_offset + 4 ))
printf '\x02' | dd of="$work" bs=1 seek="$flags_at" conv=notrunc status=none

[[ $(readelf -V -W "$work") == *"Name: $version  Flags: WEAK"* ]] || {
  echo "patch-libtorchsharp: marking $version weak did not take effect" >&2
  rm -f "$work"
  exit 1
}
mv -f "$work" "$lib"
echo "patch-libtorchsharp: patched $lib for a libstdc++ without $version"
