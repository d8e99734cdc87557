"""The archive behind a real TLS reverse proxy (nginx, test CA) that checks every request:
OpenID access tokens through ``auth_request`` to the real provider's userinfo endpoint,
or HTTP basic auth plus a client certificate. Orthanc is the archive behind it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydicom.dataset import Dataset

from app.archive.client import open_dicomweb
from app.delivery.outbox import Outbox, OutgoingObject
from app.delivery.sender import Sender
from app.errors import (
    ArchiveHTTPError,
    ArchiveUnreachable,
    ConfigError,
    SecurityError,
    SignInRequired,
)
from app.security import signin
from app.security.http_auth import keyring_key, session_for
from app.security.tls import client_key_secret_user
from app.security.tokens import refresh_token_user
from app.settings import ConnectionProfile
from tests.security.conftest import SEEN_SECRETS, RecordingKeyring, oidc_profile
from tests.support import dicom_data, nginx_proxy
from tests.support.oidc_provider import Browser, OidcProvider
from tests.support.orthanc import OrthancServer

BASIC_PASSWORD = "pacs-basic-password-Zq81"


@pytest.fixture(scope="module")
def pki(security_tmp: Path) -> nginx_proxy.Pki:
    return nginx_proxy.make_pki(security_tmp / "pki")


@pytest.fixture(scope="module")
def proxy(
    security_tmp: Path,
    pki: nginx_proxy.Pki,
    orthanc_server: OrthancServer,
    provider: OidcProvider,
) -> Iterator[nginx_proxy.Nginx]:
    why = nginx_proxy.available()
    if why:
        pytest.fail(f"the real TLS proxy cannot run: {why} (installer/dev.sh test)")
    SEEN_SECRETS.update({BASIC_PASSWORD, pki.client_key_passphrase})
    server = nginx_proxy.start_nginx(
        security_tmp / "nginx",
        pki,
        orthanc_port=orthanc_server.http_port,
        provider_port=provider.port,
        basic_password=BASIC_PASSWORD,
    )
    try:
        yield server
    finally:
        server.stop()


def _upload(orthanc: OrthancServer, ds: Dataset) -> None:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    requests.post(
        f"{orthanc.base_url}/instances", data=buffer.getvalue(), timeout=30
    ).raise_for_status()


def _plain(url: str, **extra: object) -> ConnectionProfile:
    return ConnectionProfile(name="plain", url=url, **extra)  # type: ignore[arg-type]


def test_tls_failures_are_told_plainly(proxy: nginx_proxy.Nginx, pki: nginx_proxy.Pki) -> None:
    cases = [
        (
            _plain(proxy.url("oidc"), ca_bundle=str(pki.wrong_ca)),
            "not issued by a CA in the profile's CA bundle",
        ),
        (_plain(proxy.url("oidc")), "not issued by a CA in the system's trusted CAs"),
        (
            _plain(proxy.url("oidc", host="127.0.0.1"), ca_bundle=str(pki.ca)),
            "issued for another host name",
        ),
        (_plain(proxy.url("expired"), ca_bundle=str(pki.ca)), "has expired"),
    ]
    for profile, message in cases:
        archive = open_dicomweb(profile.url, session=session_for(profile), timeout=10)
        with pytest.raises(ArchiveUnreachable, match=message):
            archive.check()
    # the right CA: TLS passes, and the proxy wants a sign-in
    profile = _plain(proxy.url("oidc"), ca_bundle=str(pki.ca))
    with pytest.raises(ArchiveHTTPError) as err:
        open_dicomweb(profile.url, session=session_for(profile), timeout=10).check()
    assert err.value.status == 401


def test_basic_auth_with_an_encrypted_client_key(
    proxy: nginx_proxy.Nginx,
    pki: nginx_proxy.Pki,
    recording_keyring: RecordingKeyring,
    empty_orthanc: OrthancServer,
) -> None:
    _upload(empty_orthanc, dicom_data.image("tls1", prefix="proxy"))
    profile = ConnectionProfile(
        name="mtls",
        url=proxy.url("mtls"),
        auth="basic",
        username=nginx_proxy.BASIC_USER,
        ca_bundle=str(pki.ca),
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
    )
    recording_keyring.set_password("ai-review-companion", keyring_key(profile), BASIC_PASSWORD)
    with pytest.raises(ConfigError, match="encrypted and no passphrase"):
        session_for(profile)
    recording_keyring.set_password(
        "ai-review-companion", client_key_secret_user(profile), "wrong passphrase"
    )
    with pytest.raises(SecurityError, match="cannot use the client certificate"):
        session_for(profile)
    recording_keyring.set_password(
        "ai-review-companion", client_key_secret_user(profile), pki.client_key_passphrase
    )
    archive = open_dicomweb(profile.url, session=session_for(profile), timeout=10)
    assert len(archive.search_studies()) == 1
    # no client certificate: nginx refuses (HTTP 400, "No required SSL certificate was sent")
    bare = ConnectionProfile(
        name="mtls",
        url=proxy.url("mtls"),
        auth="basic",
        username=nginx_proxy.BASIC_USER,
        ca_bundle=str(pki.ca),
    )
    with pytest.raises(ArchiveHTTPError) as err:
        open_dicomweb(bare.url, session=session_for(bare), timeout=10).check()
    assert err.value.status == 400


def _signed_in_profile(
    provider: OidcProvider, proxy: nginx_proxy.Nginx, pki: nginx_proxy.Pki, path: str = ""
) -> ConnectionProfile:
    url = proxy.url("oidc")
    if path:
        url = url.replace("/dicom-web", f"/{path}/dicom-web")
    profile = oidc_profile(provider, url=url, ca_bundle=str(pki.ca))
    signin.sign_in(profile, open_browser=Browser().open, timeout_s=20)
    return profile


def test_expired_access_tokens_are_refreshed_silently(
    proxy: nginx_proxy.Nginx,
    pki: nginx_proxy.Pki,
    provider: OidcProvider,
    recording_keyring: RecordingKeyring,
    empty_orthanc: OrthancServer,
) -> None:
    _upload(empty_orthanc, dicom_data.image("tls2", prefix="proxy"))
    profile = _signed_in_profile(provider, proxy, pki)
    tokens = signin.tokens_for(profile)
    archive = open_dicomweb(profile.url, session=session_for(profile), timeout=10)
    assert len(archive.search_studies()) == 1 and tokens.refreshes == 0
    # 1. near expiry: refreshed before the request, the proxy never sees an expired token
    time.sleep(provider.access_token_ttl_s * 0.8)
    assert len(archive.search_studies()) == 1 and tokens.refreshes == 1
    # 2. this computer's clock runs 30 s late: the app thinks its token is fresh, the proxy
    #    (via the provider) says it has expired -> 401 -> one refresh -> the request again
    real = time.time
    tokens._clock = lambda: real() - 30  # simulated clock skew (the class takes a clock)
    time.sleep(provider.access_token_ttl_s + 0.5)
    log_before = proxy.access_log().count('" 401 ')
    assert len(archive.search_studies()) == 1
    assert tokens.refreshes == 2
    assert proxy.access_log().count('" 401 ') == log_before + 1
    tokens._clock = real
    assert len(archive.search_studies()) == 1


def test_revoked_sign_in_prompts_once_and_loses_nothing_from_the_outbox(
    proxy: nginx_proxy.Nginx,
    pki: nginx_proxy.Pki,
    provider: OidcProvider,
    recording_keyring: RecordingKeyring,
    empty_orthanc: OrthancServer,
    tmp_path: Path,
) -> None:
    profile = _signed_in_profile(provider, proxy, pki)
    tokens = signin.tokens_for(profile)
    prompts: list[str] = []
    tokens.on_sign_in_required = lambda p: prompts.append(p.name)
    archive = open_dicomweb(profile.url, session=session_for(profile), timeout=10)
    outbox = Outbox(tmp_path / "journal.sqlite3")
    images = [dicom_data.image(f"ob{i}", prefix="proxy") for i in range(2)]
    ids = outbox.submit(
        [OutgoingObject(ds, "test image") for ds in images], destination=profile.url
    )
    sender = Sender(outbox, archive, destination=profile.url)
    # an administrator revokes the sign-in at the provider (refresh and access token)
    refresh = recording_keyring.get_password("ai-review-companion", refresh_token_user(profile))
    assert refresh
    provider.revoke(refresh, "refresh_token")
    provider.revoke(tokens.access_token(), "access_token")

    with pytest.raises(SignInRequired):
        archive.search_studies()  # the worklist query
    reports = [sender.run_once() for _ in range(3)]  # the sender's passes
    assert reports[0].sign_in_required
    assert not any(r.parked or r.sent or r.retrying for r in reports)
    with pytest.raises(SignInRequired):
        archive.search_studies()
    assert prompts == ["pacs"]
    assert tokens.refreshes == 1
    states = [(outbox.get(i).state, outbox.get(i).attempts) for i in ids]
    assert states == [("pending", 0), ("pending", 0)]  # nothing parked, nothing lost

    signin.sign_in(profile, open_browser=Browser().open, timeout_s=20)
    sender.resume()
    report = sender.run_once()
    assert sorted(report.sent) == sorted(ids)
    assert [outbox.get(i).state for i in ids] == ["sent", "sent"]
    found = {
        ref.sop_uid
        for ds in images
        for ref in archive.search_instances(study_uid=str(ds.StudyInstanceUID))
    }
    assert found == {str(ds.SOPInstanceUID) for ds in images}
    outbox.close()


def test_a_403_is_parked_not_retried(
    proxy: nginx_proxy.Nginx,
    pki: nginx_proxy.Pki,
    provider: OidcProvider,
    recording_keyring: RecordingKeyring,
    tmp_path: Path,
) -> None:
    profile = _signed_in_profile(provider, proxy, pki, path="readonly")
    archive = open_dicomweb(profile.url, session=session_for(profile), timeout=10)
    outbox = Outbox(tmp_path / "journal.sqlite3")
    [item] = outbox.submit(
        [OutgoingObject(dicom_data.image("ro", prefix="proxy"), "img")], destination=profile.url
    )
    sender = Sender(outbox, archive, destination=profile.url)
    before = proxy.access_log().count("POST /readonly/dicom-web/studies")
    report = sender.run_once()
    assert report.parked == [item]
    assert "403" in outbox.get(item).reason
    assert sender.run_once().attempted == 0  # parked: no further tries
    after = proxy.access_log().count("POST /readonly/dicom-web/studies")
    assert after - before == 1  # one request: no 401-style retry, no loop
    outbox.close()
