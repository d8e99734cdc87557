"""Render the app icon (resources/icons/app.svg) to the PNG sizes desktops want and a Windows .ico.

    python installer/make_icons.py OUT_DIR

Writes OUT_DIR/hicolor/<n>x<n>/apps/ai-review-companion.png for the freedesktop icon
theme and OUT_DIR/companion.ico (16-256 px) for the Windows executable and installer.
Qt renders the SVG (QtSvg is part of PySide6-Essentials); Pillow, which highdicom
already needs, writes the .ico.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "app.svg"
NAME = "ai-review-companion"
SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_pngs(out_dir: Path) -> dict[int, bytes]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read the icon {SVG}")
    pngs: dict[int, bytes] = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"cannot write {target}")
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        pngs[size] = bytes(buffer.data())
    return pngs


def write_ico(pngs: dict[int, bytes], target: Path) -> None:
    from PIL import Image

    largest = Image.open(io.BytesIO(pngs[max(pngs)]))
    largest.save(target, format="ICO", sizes=[(s, s) for s in sorted(pngs)])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = render_pngs(out_dir)
    write_ico(pngs, out_dir / "companion.ico")
    print(f"icons written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
