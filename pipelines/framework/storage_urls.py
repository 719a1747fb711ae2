"""What a lake, input or shard URL names: its scheme and the path its filesystem takes.

Kept apart from the I/O layer (storage.py) because it is pure string work, and because what a URL
may not hold (credentials in a bucket URL) is decided here, before anything can print it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.framework.storage_settings import StorageError

OBJECT_SCHEMES = frozenset({"s3", "gs", "az"})
SCHEME_ALIASES = {"gcs": "gs", "abfs": "az", "abfss": "az", "s3a": "s3"}
HTTP_SCHEMES = frozenset({"http", "https"})
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


def split_url(value: str) -> tuple[str, str]:
    """(scheme, filesystem path); plain paths and file:// URLs are resolved local paths."""
    match = URL.match(value)
    if not match:
        return "file", str(Path(value).expanduser().resolve())
    scheme = SCHEME_ALIASES.get(match.group(1).lower(), match.group(1).lower())
    rest = match.group(2)
    if scheme == "file":
        if not rest:  # file:// alone would be the root of the disk: a lake there is a typo, not a choice
            raise StorageError(f"{value}: name a path, e.g. file:///data/lake")
        return "file", str(Path(rest).resolve())
    if scheme in OBJECT_SCHEMES:
        rest = rest.strip("/")
        if not rest:
            raise StorageError(f"{value}: name a bucket, e.g. {scheme}://my-bucket/lake")
        bucket = rest.split("/", 1)[0]
        if "@" in bucket:  # user:password@bucket: shown, the password would reach every log and record
            shown = f"{scheme}://***@{rest.split('@', 1)[1]}"
            raise StorageError(
                f"{shown}: a bucket URL cannot carry credentials; set them in the environment "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the variables `storage:` names)"
            )
        return scheme, rest
    if scheme in HTTP_SCHEMES:
        return scheme, rest
    raise StorageError(
        f"{value}: unsupported scheme {scheme!r}; use a path or s3://, gs://, az://, http(s)://"
    )
