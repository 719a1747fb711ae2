"""Where object storage is and how to sign in: the spec's `storage:` block, read by every client module.

Credentials are read from environment variables, named in the settings, by each process that builds a
filesystem; they are never stored in a setting, a Location, a record or a message (pipelines/framework/
storage.py says why).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GOOGLE_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"  # a key file's path, read by Google's clients


class StorageError(OSError):
    """Storage that cannot be reached or used; the message names the URL and what to set."""


class StorageSettings(BaseModel):
    """A job spec's `storage:` block. Every field falls back to the standard environment variable.

    The credential fields hold variable *names*: a spec is committed to git and copied into run
    records, so it must never hold a secret itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    endpoint: str | None = None
    region: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    allow_http: bool | None = None
    access_key_env: str = "AWS_ACCESS_KEY_ID"
    secret_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str = "AWS_SESSION_TOKEN"
    retries: int = 4
    # Azure (az://): the account's blob endpoint, e.g. http://127.0.0.1:10000/ACCOUNT for Azurite.
    azure_endpoint: str | None = None
    azure_account_env: str = "AZURE_STORAGE_ACCOUNT_NAME"
    azure_key_env: str = "AZURE_STORAGE_ACCOUNT_KEY"
    # GCS (gs://): an endpoint other than Google's (an emulator). Credentials: Google's defaults
    # (GOOGLE_APPLICATION_CREDENTIALS, the only key-file variable pyarrow's GCS client reads).
    gcs_endpoint: str | None = None

    @field_validator(
        "access_key_env",
        "secret_key_env",
        "session_token_env",
        "azure_account_env",
        "azure_key_env",
    )
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            # Never echo the value: a user who pasted the secret itself here must not see it printed.
            raise ValueError(
                "must name an environment variable (letters, digits, '_'), not hold a credential"
            )
        return value

    def resolved_endpoint(self, scheme: str = "s3") -> str | None:
        """The endpoint for `scheme`: the spec's setting for that provider, else its variable."""
        if scheme == "az":
            return self.azure_endpoint or os.environ.get("AZURE_STORAGE_ENDPOINT")
        if scheme == "gs":
            return self.gcs_endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
        return self.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

    def resolved_region(self) -> str:
        return (
            self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )

    def resolved_allow_http(self, scheme: str = "s3") -> bool:
        if self.allow_http is not None:
            return self.allow_http
        return os.environ.get(self.allow_http_variable(scheme), "").strip().lower() in ("1", "true", "yes")

    @staticmethod
    def allow_http_variable(scheme: str) -> str:
        """The provider's variable for plain http, as delta-rs's object_store reads it too."""
        return {"az": "AZURE_ALLOW_HTTP", "gs": "GOOGLE_ALLOW_HTTP"}.get(scheme, "AWS_ALLOW_HTTP")

    def setup_hint(self, scheme: str) -> str:
        """What to set to reach `scheme`'s storage, for error messages (variable names only)."""
        if scheme == "az":
            return (
                f"Set AZURE_STORAGE_ENDPOINT (or storage.azure_endpoint) for a non-Azure server, "
                f"{self.azure_account_env} and {self.azure_key_env}."
            )
        if scheme == "gs":
            return (
                "Set STORAGE_EMULATOR_HOST (or storage.gcs_endpoint) for a non-Google server, "
                "else GOOGLE_APPLICATION_CREDENTIALS."
            )
        return "Set AWS_ENDPOINT_URL (or storage.endpoint), AWS_REGION and the credential variables."

    def secret_names(self) -> tuple[str, ...]:
        """The environment variables whose values must never leave the process."""
        return (self.access_key_env, self.secret_key_env, self.session_token_env, self.azure_key_env)

    def variable_names(self) -> tuple[str, ...]:
        """Every variable these settings read credentials from (what executors need forwarded)."""
        return (*self.secret_names(), self.azure_account_env)

    def credentials(self) -> dict[str, str]:
        names = {"access_key": self.access_key_env, "secret_key": self.secret_key_env}
        names["session_token"] = self.session_token_env
        return {key: os.environ[var] for key, var in names.items() if os.environ.get(var)}


_active = StorageSettings()


def use_settings(settings: StorageSettings) -> None:
    """Make a job's `storage:` block the default for Locations parsed in this process."""
    global _active
    _active = settings


def active_settings() -> StorageSettings:
    return _active


def scrub(text: str, settings: StorageSettings | None = None) -> str:
    """`text` with every live credential value replaced by `***`."""
    for name in (settings or _active).secret_names():
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
