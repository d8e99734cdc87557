"""The display half of ``companion --self-test``, run in a child process.

Loads the Qt platform plugin (a failure aborts this process, which the parent reports)
and opens a VTK OpenGL render window to read the renderer string. Prints the checks
as one JSON line on stdout.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from app.selftest import Check


def probe() -> int:
    checks: list[Check] = []
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    platform = QApplication.platformName()
    screen = QApplication.primaryScreen()
    size = f", screen {screen.size().width()}x{screen.size().height()}" if screen else ""
    status = "warning" if platform in ("offscreen", "minimal") else "ok"
    checks.append(Check("Qt platform", status, f"{platform}{size}"))
    checks.append(_vtk(platform))
    print(json.dumps([asdict(c) for c in checks]), flush=True)
    del app
    return 0


def _vtk(platform: str) -> Check:
    if platform in ("offscreen", "minimal"):
        return Check("VTK OpenGL", "warning",
                     f"not tried on Qt's {platform} platform (the image viewer needs a display)")
    try:
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - registers the OpenGL backend
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

        window = vtkRenderWindow()
        window.SetOffScreenRendering(True)
        window.AddRenderer(vtkRenderer())
        window.SetSize(64, 64)
        window.Render()
        capabilities = window.ReportCapabilities() or ""
        window.Finalize()
    except Exception as exc:  # noqa: BLE001 - whatever VTK raises is the answer
        return Check("VTK OpenGL", "failed", f"no OpenGL context: {exc!r}")
    found = re.search(r"OpenGL renderer string:\s*(.+)", capabilities)
    version = re.search(r"OpenGL version string:\s*(.+)", capabilities)
    if not found:
        return Check("VTK OpenGL", "failed", "an OpenGL context opened but reports no renderer")
    text = found.group(1).strip() + (f", OpenGL {version.group(1).strip()}" if version else "")
    return Check("VTK OpenGL", "ok", text)
