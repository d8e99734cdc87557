#!/usr/bin/env bash
# Package a PyInstaller one-folder bundle as a Debian package.
#   installer/linux/make_deb.sh BUNDLE_DIR FLAVOR VERSION ICONS_DIR OUT_DIR
# Files: /opt/ai-review-companion (the bundle), /usr/bin/companion, the menu entry
# with the companion:// URL handler, and the icon in the hicolor theme.
# Depends is worked out from the bundle's binaries (deb_depends.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bundle=$(cd "$1" && pwd); flavor=$2; version=$3; icons=$(cd "$4" && pwd); out=$5
python=${PYTHON:-python3}

name=ai-review-companion
[ "$flavor" = full ] && name=ai-review-companion-full
arch=$(dpkg --print-architecture)
root=$(mktemp -d "${TMPDIR:-/tmp}/companion-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

install -d "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
  "$root/usr/share/icons/hicolor/scalable/apps" "$root/usr/share/doc/$name" "$root/DEBIAN"
cp -a "$bundle" "$root/opt/ai-review-companion"
install -m 0755 "$here/companion.sh" "$root/usr/bin/companion"
install -m 0644 "$here/ai-review-companion.desktop" "$root/usr/share/applications/"
install -m 0644 "$here/../../resources/icons/app.svg" \
  "$root/usr/share/icons/hicolor/scalable/apps/ai-review-companion.svg"
for png in "$icons"/hicolor/*/apps/ai-review-companion.png; do
  size=$(basename "$(dirname "$(dirname "$png")")")
  install -D -m 0644 "$png" "$root/usr/share/icons/hicolor/$size/apps/ai-review-companion.png"
done
cat > "$root/usr/share/doc/$name/copyright" <<COPY
AI Review Companion $version ($flavor flavor).
The bundle in /opt/ai-review-companion carries Python, Qt (PySide6, LGPLv3),
VTK (BSD), pydicom (MIT), highdicom (MIT), dicomweb-client (MIT) and the other
libraries listed in /opt/ai-review-companion/_internal/*.dist-info with their licences.
COPY
install -m 0755 "$here/postinst" "$here/postrm" "$root/DEBIAN/"

depends=$("$python" "$here/deb_depends.py" "$root/opt/ai-review-companion")
size_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
conflicts=ai-review-companion-full
[ "$flavor" = full ] && conflicts=ai-review-companion
description="Review AI results in medical imaging beside the PACS"
[ "$flavor" = full ] && description="$description (with local inference)"
cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: AI Review Companion team <companion@example.org>
Installed-Size: $size_kb
Depends: $depends
Recommends: gnome-keyring | kwalletmanager, xdg-utils, desktop-file-utils
Conflicts: $conflicts
Replaces: $conflicts
Provides: ai-review-companion-bundle
Section: science
Priority: optional
Homepage: https://example.org/ai-review-companion
Description: $description
 A desktop companion for radiologists and pathologists: a prioritized worklist
 from any DICOMweb archive (or the built-in offline demo), AI findings from SR
 TID 1500 and SEG shown as overlays and finding cards, confirm / reject / modify
 with the keyboard, and the assessment written back to the archive through a
 durable outbox. Run "companion --self-test" to check a workstation.
CONTROL

mkdir -p "$out"
deb="$out/${name}_${version}_${arch}.deb"
# gzip: xz would shave ~15% off but takes minutes on a 600 MB tree.
dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "$deb" >/dev/null
echo "$deb"
