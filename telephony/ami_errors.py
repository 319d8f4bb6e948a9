"""The errors an AMI action can end in, raised to whoever sent it."""

from __future__ import annotations


class AmiError(Exception):
    """Base class of the AMI errors raised to callers."""


class AmiNotConnected(AmiError):
    """No logged-in AMI connection right now; the action was not sent."""


class AmiConnectionLost(AmiError):
    """The connection died before the action was answered. It is NOT re-sent (panoramisk
    fault #4): whether Asterisk executed it is unknown."""


class AmiActionTimeout(AmiError, TimeoutError):
    """No complete answer to an action within its timeout."""


class AmiAuthError(AmiError):
    """Asterisk refused the login."""
