"""The Debian packages a PyInstaller bundle needs from the system (what dpkg-shlibdeps does).

    python installer/linux/deb_depends.py BUNDLE_DIR

Runs ``ldd`` on every ELF file in the bundle with the bundle's own folders on the
library path, keeps the libraries that resolve outside the bundle, and asks
``dpkg -S`` which package holds each. Prints one Depends line. A library that
resolves nowhere is reported on stderr (an optional Qt plugin, e.g. the GTK
platform theme, may need a desktop the workstation does not have) and the
script exits 1 only if a *required* part - the executable, Python, Qt core,
the xcb platform plugin or VTK - misses a library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

# Loaded with dlopen, so ldd cannot see them: Mesa's drivers (software OpenGL for
# VTK where there is no GPU driver) and a font (Qt draws no text without one).
DLOPENED = ("libgl1-mesa-dri", "fonts-dejavu-core | fonts-liberation2")
# These must load; a missing library behind anything else only disables an extra.
REQUIRED_PARTS = (
    "companion",
    "libpython",
    "libQt6Core",
    "libQt6Gui",
    "libQt6Widgets",
    "libqxcb",
    "libQt6XcbQpa",
    "libvtkRenderingOpenGL2",
    "libvtkCommonCore",
)


def elf_files(bundle: Path) -> list[Path]:
    found = []
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def linked_libraries(path: Path, library_path: str) -> dict[str, str | None]:
    env = dict(os.environ, LD_LIBRARY_PATH=library_path)
    out = subprocess.run(
        ["ldd", str(path)], check=False, capture_output=True, text=True, env=env
    ).stdout
    libs: dict[str, str | None] = {}
    for line in out.splitlines():
        if "=>" not in line:
            continue
        name, _, where = line.strip().partition("=>")
        where = where.strip()
        libs[name.strip()] = None if where.startswith("not found") else where.split(" (")[0]
    return libs


@cache
def owning_package(path: str) -> str | None:
    real = os.path.realpath(path)
    for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1)):
        proc = subprocess.run(
            ["dpkg", "-S", candidate], check=False, capture_output=True, text=True
        )
        if proc.returncode == 0:
            return proc.stdout.split(":", 1)[0].strip()
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    bundle = Path(argv[0]).resolve()
    files = elf_files(bundle)
    library_path = ":".join(sorted({str(p.parent) for p in files}))
    packages: set[str] = set()
    missing: dict[str, set[str]] = defaultdict(set)
    for path in files:
        for name, where in linked_libraries(path, library_path).items():
            if where is None:
                missing[name].add(path.name)
            elif not where.startswith(str(bundle)):
                package = owning_package(where)
                if package is None:
                    print(f"warning: no package holds {where}", file=sys.stderr)
                else:
                    packages.add(package.split(":")[0])
    fatal = False
    for name, users in sorted(missing.items()):
        required = sorted(u for u in users if u.startswith(REQUIRED_PARTS))
        kind = "error" if required else "note"
        fatal |= bool(required)
        print(f"{kind}: {name} not found (needed by {', '.join(sorted(users))})", file=sys.stderr)
    print(", ".join(sorted(packages) + list(DLOPENED)))
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
