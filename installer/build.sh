#!/usr/bin/env bash
# Build the workstation bundle and, on Debian/Ubuntu, its .deb.
#   bash installer/build.sh review   # viewing, server results, review, write-back (no torch)
#   bash installer/build.sh full     # the same plus torch for local inference
# Output: dist/companion-<flavor>/ (one-folder bundle) and dist/*.deb; DIST=dir and WORK=dir
# move the output and the scratch files (build/) elsewhere.
# BUILD_VENV=path reuses an existing environment (it must have `pip install -e .[bundle]`,
# plus torch for the full flavor); by default one is made in build/venv-<flavor>.
# TORCH_SPEC picks the torch wheel of the full flavor (default torch==2.13.0: a CPU
# wheel; a CUDA build of torch makes a bundle several GB larger). It may hold pip options,
# e.g. TORCH_SPEC="torch==2.13.0 --index-url URL".
set -euo pipefail
cd "$(dirname "$0")/.."

flavor=${1:-review}
case "$flavor" in review|full) ;; *) echo "usage: $0 {review|full}" >&2; exit 2 ;; esac
PYTHON=${PYTHON:-python3}
dist=${DIST:-dist}
work=${WORK:-build}
venv=${BUILD_VENV:-$work/venv-$flavor}
version=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

if [ ! -x "$venv/bin/python" ]; then
  echo "Making the build environment $venv" >&2
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  if [ "$flavor" = full ]; then
    # Split into words: the spec may carry pip options (e.g. --index-url of a CUDA wheel mirror).
    read -ra torch_spec <<< "${TORCH_SPEC:-torch==2.13.0}"
    "$venv/bin/python" -m pip install -q "${torch_spec[@]}" >&2
  fi
  "$venv/bin/python" -m pip install -q -e ".[bundle]" >&2
fi
if [ "$flavor" = full ]; then
  "$venv/bin/python" -c 'import torch' 2>/dev/null ||
    { echo "the full flavor needs torch in $venv (pip install torch==2.13.0)" >&2; exit 1; }
fi

echo "Rendering icons" >&2
"$venv/bin/python" installer/make_icons.py "$work/icons" >/dev/null

echo "Bundling the $flavor flavor with PyInstaller" >&2
COMPANION_FLAVOR=$flavor "$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath "$dist" --workpath "$work/pyinstaller-$flavor" installer/companion.spec >&2
bundle=$dist/companion-$flavor
if [ "$(uname -s)" = Linux ] && command -v strip >/dev/null 2>&1; then
  # VTK's wheels carry their symbol tables (libvtkCommonCore.so: 95 MB, 61 MB stripped).
  # Only VTK: stripping the libraries auditwheel patched (numpy.libs, ...) breaks them.
  find "$bundle/_internal/vtkmodules" -name '*.so*' -type f -exec strip --strip-unneeded {} +
fi
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1))"

if command -v dpkg-deb >/dev/null 2>&1; then
  echo "Packaging the .deb" >&2
  deb=$(PYTHON="$venv/bin/python" bash installer/linux/make_deb.sh "$bundle" "$flavor" "$version" "$work/icons" "$dist")
  echo "deb: $deb ($(du -h "$deb" | cut -f1))"
fi
