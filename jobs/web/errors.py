"""The errors the web app's data layer raises for a request, each answered with its own status.

They are kinds of request failure, not of server failure: `app.py` maps each to a 4xx/503 page or
JSON body carrying the message, so that no bad parameter ever becomes a 500.
"""

from __future__ import annotations


class NotFound(LookupError):
    """A run, table, version or row the request names does not exist (the app answers 404)."""


class BadRequest(ValueError):
    """A parameter that cannot apply to the table it names (the app answers 400 with the message)."""


class Busy(RuntimeError):
    """No query slot came free in time, or the query ran past its limit (the app answers 503)."""


class Damaged(RuntimeError):
    """A file the lake holds cannot be read (a stored report, a table's log or data files): the app
    answers 500 with what broke and what to do, never a bare "Internal Server Error"."""
