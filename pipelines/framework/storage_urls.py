"""What a lake, input or shard URL names: its scheme and the path its filesystem takes; and what a
store's answer says (an error's cause, whether a server speaks S3).

Kept apart from the I/O layer (storage.py) because it is pure string work, and because what a URL
may not hold (credentials in a bucket URL, a query in a lake's) is decided here, before anything can
print it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.framework.storage_settings import StorageError, StorageSettings, scrub

OBJECT_SCHEMES = frozenset({"s3", "gs", "az"})
SCHEME_ALIASES = {"gcs": "gs", "abfs": "az", "abfss": "az", "s3a": "s3"}
HTTP_SCHEMES = frozenset({"http", "https"})
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")
# How S3 (pyarrow's AWS SDK codes, or the XML codes servers send), GCS and Azure say a request's
# credentials were refused.
REFUSED = re.compile(
    r"ACCESS_DENIED|SIGNATURE_DOES_NOT_MATCH|INVALID_ACCESS_KEY_ID|INVALID_CLIENT_TOKEN_ID|EXPIRED_TOKEN|"
    r"AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|AuthenticationFailed|AuthorizationFailure|"
    r"PERMISSION_DENIED|Unauthenticated|\b40[13]\b"
)


class UrlError(StorageError):
    """A storage URL wrong as written: a usage or spec error (exit 2), not storage that failed (exit 1)."""


def split_url(value: str) -> tuple[str, str]:
    """(scheme, filesystem path); plain paths and file:// URLs are resolved local paths."""
    match = URL.match(value)
    if not match:
        return "file", str(Path(value).expanduser().resolve())
    scheme = SCHEME_ALIASES.get(match.group(1).lower(), match.group(1).lower())
    rest = match.group(2)
    if scheme == "file":
        if not rest:  # file:// alone would be the root of the disk: a lake there is a typo, not a choice
            raise UrlError(f"{value}: name a path, e.g. file:///data/lake")
        return "file", str(Path(rest).resolve())
    if scheme in OBJECT_SCHEMES:
        return scheme, _object_path(scheme, rest.strip("/"))
    if scheme in HTTP_SCHEMES:
        return scheme, rest
    raise UrlError(f"{value}: unsupported scheme {scheme!r}; use a path or s3://, gs://, az://, http(s)://")


def _object_path(scheme: str, rest: str) -> str:
    """`bucket/key` of an object-store URL; refused where no client could use it as meant.

    Credentials in it would reach every log and record. An empty (`a//b`), `.` or `..` segment is
    taken literally by pyarrow (or refused, for an empty one, as a traceback) but resolved by
    delta-rs's URL parser, so a lake's run records and tables would land under different keys.
    """
    shown = _shown(scheme, rest)
    if not rest:
        raise UrlError(f"{shown}: name a bucket, e.g. {scheme}://my-bucket/lake")
    if "@" in rest.split("/", 1)[0]:
        raise UrlError(
            f"{shown}: a bucket URL cannot carry credentials; set them in the environment "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the variables `storage:` names)"
        )
    segments = rest.split("/")
    # %2e is a dot to a URL parser (delta-rs's), never to pyarrow
    if {"", ".", ".."} & {s.lower().replace("%2e", ".") for s in segments}:
        raise UrlError(
            f"{shown}: an object-store URL cannot hold an empty, `.` or `..` path segment (keys are "
            f"taken literally, so the lake would not be where it reads); write it plainly, e.g. "
            f"{scheme}://{segments[0]}/lake"
        )
    return rest


def lake_url_problem(url: str) -> str | None:
    """Why `url` (canonical, as a Location holds it) cannot be a lake's root; None where it can.

    delta-rs parses a table's URL and drops a query (`?region=...`) or fragment, so the tables would
    land beside the run records that pyarrow writes at the literal key. An input's key may hold `?`
    or `#` (pyarrow alone reads inputs), so this is asked of lakes only. The query is never shown:
    it is where a credential would be (`?secret_key=...`).
    """
    match = URL.match(url)
    if not match or match.group(1) not in OBJECT_SCHEMES or not {"?", "#"} & set(match.group(2)):
        return None
    return (
        f"{_shown(match.group(1), match.group(2))}: a lake or output URL cannot carry a query (?...) or a "
        "fragment (#...): delta-rs drops it while pyarrow keeps it in the key, so tables would land "
        "elsewhere; set the region, endpoint and credentials in the environment (AWS_REGION, "
        "AWS_ENDPOINT_URL ...) or the spec's `storage:` block"
    )


def _shown(scheme: str, rest: str) -> str:
    """The URL as an error may print it: whatever a `user:pass@` or a query could hide is `***`."""
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    if cut >= 0:
        rest = rest[:cut] + rest[cut] + "***"
    return f"{scheme}://{rest}"


def store_error(text: str, settings: StorageSettings, scheme: str) -> str:
    """A store's error for a message that goes on: scrubbed, its last period dropped, and refused
    credentials said as such, with the variables to check (names, never values): the store's own
    words (`ACCESS_DENIED ... No response body`) name neither the cause nor the fix."""
    text = scrub(text, settings).rstrip(". ")
    if scheme == "file" or not REFUSED.search(text):
        return text
    if scheme == "az":
        names = f"{settings.azure_account_env} and {settings.azure_key_env}"
    elif scheme == "gs":
        names = "GOOGLE_APPLICATION_CREDENTIALS"
    else:
        names = (
            f"{settings.access_key_env} and {settings.secret_key_env} ({settings.session_token_env} if set)"
        )
    return f"{text}; the credentials were refused: check {names}, or the variables `storage:` names"


def is_s3_answer(headers: list[str], body: bytes) -> bool:
    """Whether an HTTP answer (header names, start of the body) came from an S3 server: S3 answers
    every request, signed or not, with `x-amz-` (moto: `x-amzn-`) headers or an XML error body; a web server does not."""
    return any(name.lower().startswith("x-amz") for name in headers) or b"<Error>" in body


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`**/` spans any number of folders, `*` and `?` stay within one, as in pathlib's glob."""
    parts = re.split(r"(\*\*/?)", pattern)
    out = []
    for part in parts:
        if part in ("**", "**/"):
            out.append("(?:.*/)?" if part == "**/" else ".*")
        elif part:
            out.append(_fnmatch_segment(part))
    return re.compile("^" + "".join(out) + "$")


def _fnmatch_segment(text: str) -> str:
    return "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in text)
