"""Run records as the web app serves them: no secrets, no host details.

A run record is written for the operator and holds the job spec (which may carry
credentials in stage params or Spark conf), the host name and pid, and absolute
paths of this machine. The app shows what a run did, not where or with what keys,
so that a page forwarded to a colleague or read by a hostile page leaks nothing.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.framework.runrecord import RunRecord

WITHHELD = "[withheld]"
# Credential keys in any naming style (`awsSecretAccessKey`, `api-key`, `spark.hadoop.fs.s3a.secret.key`,
# `sasToken`), judged by their words so that `token_count` or `tokenizer` stay visible.
SECRET_ANYWHERE = {
    "secret",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "credentials",
    "env",
    "environ",
}
SECRET_LAST = {"token", "auth", "authorization", "cookie", "signature", "sas", "environment", "pwd"}
KEY_OWNERS = {
    "api",
    "access",
    "secret",
    "private",
    "account",
    "encryption",
    "master",
    "signing",
    "sas",
    "client",
}
WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
HOST_FIELDS = ("host", "pid", "app_id", "log_path")
# An absolute path inside a string (a spec value, an error message): a slash not preceded by a word
# character, `:` or `/`, so URLs (`https://x/y`) and relative names (`a/b`) are left alone.
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])(/[^\s/'\"`]+)+/?")
USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# `name=value` credentials inside a string (URL queries, JDBC URLs, command lines).
INLINE_SECRET = re.compile(
    r"(?i)\b(pass(?:word)?|pwd|token|secret|api[_-]?key|access[_-]?key|sig|signature)=[^&\s;,'\"]+"
)


def public_record(record: RunRecord) -> RunRecord:
    """The record with host fields cleared and every nested value scrubbed (see `scrub`)."""
    data = record.model_dump(mode="json")
    lake = data["lake"]
    data.update({field: None for field in HOST_FIELDS})
    data = {key: scrub(value, lake, key) for key, value in data.items()}
    data["lake"] = "lake"
    return RunRecord.model_validate(data)


def public_report(report: dict[str, Any] | None, lake: str | Path) -> dict[str, Any] | None:
    """A stored run report with absolute paths shortened (shard manifests, tokenizers). Reports hold
    aggregates, not configs, so keys are not judged (`eos.token` is a token of the vocabulary)."""
    return None if report is None else scrub(report, str(lake), secrets=False)


def scrub(value: Any, lake: str, key: str = "", secrets: bool = True) -> Any:
    """`value` with credentials and environment variables withheld (by their key, when `secrets`) and
    absolute paths shortened: inside the lake to `lake/...`, elsewhere to `.../last-name`."""
    if secrets and key and is_secret_key(key):
        return WITHHELD if value not in (None, "", [], {}) else value
    if isinstance(value, dict):
        return {k: scrub(v, lake, str(k), secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, lake, secrets=secrets) for v in value]
    if isinstance(value, str):
        return _paths(INLINE_SECRET.sub(rf"\1={WITHHELD}", USERINFO.sub(f"{WITHHELD}@", value)), lake)
    return value


def is_secret_key(key: str) -> bool:
    """Whether values under `key` are credentials or environment variables (`spark.executorEnv.X`)."""
    words = [w.lower() for w in WORD.findall(key)]
    if not words:
        return False
    if SECRET_ANYWHERE & set(words) or words[-1] in SECRET_LAST:
        return True
    return words[-1] in ("key", "keys") and (len(words) == 1 or words[-2] in KEY_OWNERS)


def _paths(text: str, lake: str) -> str:
    def short(match: re.Match[str]) -> str:
        path = PurePosixPath(match.group(0))
        if path == PurePosixPath(lake) or PurePosixPath(lake) in path.parents:
            return str(PurePosixPath("lake") / path.relative_to(lake))
        return f".../{path.name}" if path.name else "..."

    return ABSOLUTE_PATH.sub(short, text)
