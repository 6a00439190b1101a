"""The hub's error family.

Every error the hub raises on purpose is a ``HubError``; ``retryable`` tells a consumer loop
whether trying the same input again may succeed (a busy database) or never will (bad input).
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every deliberate hub error."""

    retryable: bool = False


class InvalidInput(HubError):
    """Input that can never be processed: the message names what is wrong."""


class UnknownEventType(InvalidInput):
    """An envelope whose ``type`` is not in the event registry."""


class NotAllowed(HubError):
    """The actor may not do this (wrong jurisdiction, wrong role)."""


class Conflict(HubError):
    """The request contradicts what is already stored (same id, other content; bad transition)."""


class NotFound(HubError):
    """The object does not exist."""


class Unavailable(HubError):
    """A dependency is busy or down; the same request may succeed later."""

    retryable = True


class Unauthenticated(HubError):
    """No credential, or one the hub does not know."""


class ConcurrentUpdate(HubError):
    """Another transaction changed the row this one read (a compare-and-set found it moved);
    running the job again sees the new state."""

    retryable = True
