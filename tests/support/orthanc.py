"""Start and stop a real Orthanc 1.10 with the DICOMweb plugin (DESIGN.md §5).

Each server gets its own storage folder and free loopback ports, so tests never
touch a system Orthanc and can run several servers side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ORTHANC_BIN = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OrthancServer:
    process: subprocess.Popen[bytes]
    http_port: int
    folder: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}/dicom-web"

    def clear(self) -> None:
        """Delete every patient (and so every study) from the server."""
        for patient in requests.get(f"{self.base_url}/patients", timeout=30).json():
            requests.delete(f"{self.base_url}/patients/{patient}", timeout=60).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def available() -> bool:
    return os.path.exists(ORTHANC_BIN) and os.path.exists(DICOMWEB_PLUGIN)


def start_orthanc(folder: Path, *, extra: dict[str, object] | None = None) -> OrthancServer:
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config: dict[str, object] = {
        "Name": "companion-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full"},
        "StableAge": 1,
        "HttpThreadsCount": 16,
        # Let QIDO-RS answer the order priority at study level, as a PACS with a RIS does.
        "ExtraMainDicomTags": {"Study": ["RequestedProcedurePriority"]},
        "LimitFindResults": 0,
        "LimitFindInstances": 0,
    }
    if extra:
        config.update(extra)
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    with open(folder / "orthanc.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [ORTHANC_BIN, str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    server = OrthancServer(process=process, http_port=http_port, folder=folder)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                "Orthanc exited at start: " + (folder / "orthanc.log").read_text()[-2000:]
            )
        try:
            if requests.get(f"{server.base_url}/system", timeout=1).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("Orthanc did not answer /system within 60 s")
