"""``companion sign-out [--profile NAME]``: end an OpenID Connect sign-in from the shell.

The same ``signin.sign_out`` as the window's "Sign out": the refresh and access
tokens are revoked at the provider where it offers revocation (RFC 7009), the
keyring entry is deleted and a ``sign_out`` entry goes into the audit trail.
``app/main.py`` adds it with ``add_parsers(sub)`` and dispatches
``args.command == "sign-out"`` to ``run(args)``.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.errors import ConfigError


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sign-out`` to the main parser's subparsers."""
    parser = subparsers.add_parser(
        "sign-out",
        help="end the OpenID Connect sign-in of a connection profile "
        "(revoke at the provider, delete the stored sign-in, audit)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        default=None,
        help="the connection profile (default: the active one in the settings)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Sign the profile out; returns the process exit status. Raises ``CompanionError``."""
    from app.audit.log import AuditLog, default_path
    from app.security.http_auth import KEYRING_SERVICE, keyring_key
    from app.security.signin import needs_sign_in, sign_out
    from app.settings import load_settings

    settings = load_settings()
    name = args.profile or settings.active_profile
    if not name:
        raise ConfigError(
            "no connection profile is active (the offline demo has no sign-in); "
            "name one with --profile"
        )
    profile = settings.profile(name)
    if profile.auth != "oidc":
        where = (
            f"; its secret stays in the OS keyring (`keyring del {KEYRING_SERVICE} "
            f"{keyring_key(profile)}` removes it)"
            if profile.auth in ("basic", "bearer")
            else ""
        )
        raise ConfigError(
            f"profile {name!r} uses auth {profile.auth!r}: it has no sign-in to end{where}"
        )
    was_signed_in = not needs_sign_in(profile)
    with AuditLog(default_path()) as audit:
        revoked = sign_out(profile, audit=audit.append)
    if not was_signed_in:
        print(f"{name}: was not signed in; nothing stored is left")
    elif revoked:
        print(f"{name}: signed out (revoked at the provider, stored sign-in deleted)")
    else:
        print(
            f"{name}: signed out here (stored sign-in deleted); the provider did not confirm "
            "the revocation"
        )
    return 0
