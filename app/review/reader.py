"""Who is reviewing: the reader named in settings, else the OS account."""

from __future__ import annotations

import getpass

from app.domain import Reader
from app.settings import Settings


def current_reader(settings: Settings) -> Reader:
    """The reader for review SRs and audit entries (sign-in, issue 7, will supply it)."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry / no login name in a container
        account = "reader"
    user_id = settings.reader_id.strip() or account
    name = settings.reader_name.strip() or user_id
    if "^" not in name:  # a one-component person name is the family name (PS3.5 6.2.1)
        name += "^"
    return Reader(
        user_id=user_id,
        name=name,
        organization=settings.reader_organization.strip(),
        role=settings.reader_role.strip(),
    )
