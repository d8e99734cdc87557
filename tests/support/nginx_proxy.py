"""A real TLS reverse proxy in front of Orthanc: nginx (Debian) with a test CA.

``make_pki`` writes a test CA, a second ("wrong") CA, a server certificate for
``localhost``, an expired one, and a client certificate whose key is encrypted with a
passphrase, all with the ``cryptography`` package. ``start_nginx`` runs one nginx
master (``daemon off``, its own pid/log/temp files under the test folder) with three
HTTPS servers on free loopback ports:

- ``oidc``: ``/dicom-web/`` to Orthanc, each request checked with ``auth_request``
  against the OpenID provider's userinfo endpoint (200 for a live access token, 401
  for an expired or revoked one), the Authorization header not passed on to Orthanc;
- ``expired``: the same certificate chain but an expired server certificate;
- ``mtls``: ``/dicom-web/`` to Orthanc behind HTTP basic auth and a required client
  certificate issued by the test CA.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.orthanc import free_port

NGINX_BIN = shutil.which("nginx") or "/usr/sbin/nginx"
BASIC_USER = "reader1"


def available() -> str:
    return "" if Path(NGINX_BIN).exists() else "nginx is not installed (apt: nginx-light)"


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Path
    wrong_ca: Path
    server_cert: Path
    server_key: Path
    expired_cert: Path
    expired_key: Path
    client_cert: Path
    client_key: Path  # encrypted with ``client_key_passphrase``
    client_key_passphrase: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: str = "") -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    path.chmod(0o600)


def _ca(cn: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:  # only the DNS name: https://127.0.0.1 is a host name mismatch
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = _ca("Companion Test CA", now)
    wrong, _ = _ca("Some Other CA", now)
    server, server_key = _leaf(
        ca, ca_key, "localhost", now - dt.timedelta(days=1), now + dt.timedelta(days=7), server=True
    )
    expired, expired_key = _leaf(
        ca,
        ca_key,
        "localhost",
        now - dt.timedelta(days=30),
        now - dt.timedelta(days=2),
        server=True,
    )
    client, client_key = _leaf(
        ca,
        ca_key,
        "reader1 workstation",
        now - dt.timedelta(days=1),
        now + dt.timedelta(days=7),
        server=False,
    )
    passphrase = base64.urlsafe_b64encode(os.urandom(18)).decode()
    pki = Pki(
        folder=folder,
        ca=_pem(folder / "ca.pem", ca),
        wrong_ca=_pem(folder / "wrong-ca.pem", wrong),
        server_cert=_pem(folder / "server.pem", server),
        server_key=folder / "server.key",
        expired_cert=_pem(folder / "expired.pem", expired),
        expired_key=folder / "expired.key",
        client_cert=_pem(folder / "client.pem", client),
        client_key=folder / "client.key",
        client_key_passphrase=passphrase,
    )
    _write_key(pki.server_key, server_key)
    _write_key(pki.expired_key, expired_key)
    _write_key(pki.client_key, client_key, passphrase)
    return pki


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    folder: Path
    ports: dict[str, int]

    def url(self, server: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.ports[server]}/dicom-web"

    def access_log(self) -> str:
        path = self.folder / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # nginx's {SSHA} scheme
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def start_nginx(
    folder: Path, pki: Pki, *, orthanc_port: int, provider_port: int, basic_password: str
) -> Nginx:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    (folder / "htpasswd").write_text(f"{BASIC_USER}:{_ssha(basic_password)}\n")
    ports = {"oidc": free_port(), "expired": free_port(), "mtls": free_port()}
    orthanc = f"http://127.0.0.1:{orthanc_port}/dicom-web/"
    tmp = folder / "tmp"
    config = f"""
user root;
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 128; }}
http {{
  access_log {folder}/access.log;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  client_max_body_size 200m;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {{
    listen 127.0.0.1:{ports["oidc"]} ssl;
    server_name localhost;
    ssl_certificate {pki.server_cert};
    ssl_certificate_key {pki.server_key};
    location /dicom-web/ {{
      auth_request /_userinfo;
      proxy_set_header Authorization "";
      proxy_pass {orthanc};
    }}
    # Viewing only: a write (STOW-RS) is refused with 403, as for an observer account.
    location /readonly/dicom-web/ {{
      auth_request /_userinfo;
      limit_except GET {{ deny all; }}
      proxy_set_header Authorization "";
      proxy_pass {orthanc};
    }}
    location = /_userinfo {{
      internal;
      proxy_pass http://127.0.0.1:{provider_port}/me;
      proxy_method GET;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host 127.0.0.1:{provider_port};
    }}
  }}
  server {{
    listen 127.0.0.1:{ports["expired"]} ssl;
    server_name localhost;
    ssl_certificate {pki.expired_cert};
    ssl_certificate_key {pki.expired_key};
    location / {{ proxy_pass {orthanc}; }}
  }}
  server {{
    listen 127.0.0.1:{ports["mtls"]} ssl;
    server_name localhost;
    ssl_certificate {pki.server_cert};
    ssl_certificate_key {pki.server_key};
    ssl_client_certificate {pki.ca};
    ssl_verify_client on;
    location /dicom-web/ {{
      auth_basic "PACS";
      auth_basic_user_file {folder}/htpasswd;
      proxy_set_header Authorization "";
      proxy_pass {orthanc};
    }}
  }}
}}
"""
    conf = folder / "nginx.conf"
    conf.write_text(config)
    log = (folder / "nginx.out").open("wb")
    process = subprocess.Popen(
        [NGINX_BIN, "-c", str(conf), "-p", str(folder)], stdout=log, stderr=subprocess.STDOUT
    )
    server = Nginx(process, folder, ports)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                "nginx exited: "
                + (folder / "nginx.out").read_text()
                + (folder / "error.log").read_text(errors="replace")
            )
        if all(_listening(p) for p in ports.values()):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("nginx did not start in 20 s")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
