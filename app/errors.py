"""One error family for everything the user can act on (DESIGN.md §3.5).

The UI shows a ``CompanionError`` in one consistent way and the CLI prints its
message on one line and exits non-zero. Messages never contain patient names,
patient IDs or secrets; they name the argument and the value that was wrong.
"""

from __future__ import annotations


class CompanionError(Exception):
    """Base class of errors a user can understand and act on."""

    exit_code = 1


class ConfigError(CompanionError):
    """A setting, profile or command-line argument is wrong."""

    exit_code = 2


class ArchiveError(CompanionError):
    """The archive could not do what was asked."""


class ArchiveUnreachable(ArchiveError):
    """No connection to the archive (refused, DNS, TLS, timeout)."""


class ArchiveHTTPError(ArchiveError):
    """The archive answered with an HTTP error status."""

    def __init__(self, message: str, status: int, server_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class NotFoundError(ArchiveError):
    """The requested study, series or instance is not in the archive."""


class ResultParseError(CompanionError):
    """An AI result object could not be read."""


class DemoDataError(CompanionError):
    """The demo data set could not be generated or stored."""


class AuditError(CompanionError):
    """The audit trail cannot be written or read safely (insecure keyring, wrong key, bad event)."""


class ReviewError(CompanionError):
    """A review action is not possible (read-only finding, nothing to undo, undecided findings)."""


class SecurityError(CompanionError):
    """Credentials, keyring or TLS settings keep the app from connecting safely."""


class SignInRequired(SecurityError):
    """The profile's sign-in has ended (no refresh token, or the provider revoked it):
    the user must sign in again. Raised once per lost sign-in, never in a loop."""

    def __init__(self, message: str, profile: str = "") -> None:
        super().__init__(message)
        self.profile = profile


class NotPermitted(ReviewError):
    """The signed-in role may not do this (an observer cannot decide or submit)."""
