"""The storage clients of one process: pyarrow filesystems and delta-rs options for each scheme.

Why apart from the settings (storage_settings.py): the settings are read everywhere (specs, run
records, scrubbing), the clients only by the I/O layer; and the Azure and GCS clients
(storage_cloud.py) build on the settings, so the module that picks a client per scheme sits above
both. S3's client is here; storage_cloud.py says why the other two need one of their own.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import pyarrow.fs as pa_fs

from pipelines.framework import storage_cloud
from pipelines.framework.storage_settings import GOOGLE_CREDENTIALS, StorageError, StorageSettings


def filesystem(scheme: str, settings: StorageSettings) -> Any:
    """The pyarrow filesystem for `scheme`, built once per process, settings and environment.

    What the environment says today is part of the key: a changed endpoint or a rotated key builds
    a new client.
    """
    if scheme == "s3":
        resolved = (settings.resolved_endpoint(), settings.resolved_region(), settings.resolved_allow_http())
        return _filesystem(scheme, settings, (resolved, *sorted(settings.credentials().items())))
    if scheme in ("az", "gs"):
        names = (settings.azure_account_env, settings.azure_key_env, GOOGLE_CREDENTIALS)
        values = tuple(os.environ.get(name) for name in names)
        resolved = (settings.resolved_endpoint(scheme), settings.resolved_allow_http(scheme))
        return _filesystem(scheme, settings, (resolved, values))
    return _filesystem(scheme, settings, ())


@lru_cache(maxsize=16)
def _filesystem(scheme: str, settings: StorageSettings, environment: tuple[Any, ...]) -> Any:
    """One filesystem per process, scheme, settings and environment."""
    if scheme == "file":
        return pa_fs.LocalFileSystem()
    if scheme == "s3":
        return _s3(settings, dict(environment[1:]))
    if scheme == "gs":
        return storage_cloud.gcs_filesystem(settings)
    if scheme == "az":
        return storage_cloud.azure_filesystem(settings)
    raise StorageError(f"{scheme}:// has no filesystem")


def _s3(settings: StorageSettings, creds: dict[str, str]) -> Any:
    endpoint = settings.resolved_endpoint()
    kwargs: dict[str, Any] = {
        "region": settings.resolved_region(),
        "retry_strategy": pa_fs.AwsStandardS3RetryStrategy(max_attempts=settings.retries + 1),
        "connect_timeout": 10,
        "request_timeout": 60,
    }
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        if scheme == "http" and not settings.resolved_allow_http():
            raise StorageError(
                f"the S3 endpoint {endpoint} is plain http: set AWS_ALLOW_HTTP=true or storage.allow_http: true"
            )
        kwargs.update(endpoint_override=host or endpoint, scheme=scheme if host else "https")
    if settings.addressing_style == "virtual":
        kwargs["force_virtual_addressing"] = True
    if "access_key" in creds and "secret_key" in creds:
        kwargs.update(access_key=creds["access_key"], secret_key=creds["secret_key"])
        if "session_token" in creds:
            kwargs["session_token"] = creds["session_token"]
    return pa_fs.S3FileSystem(**kwargs)


def delta_storage_options(scheme: str, settings: StorageSettings) -> dict[str, str]:
    """Options for delta-rs. They hold credentials: pass them to deltalake only, never print them."""
    if scheme == "az":
        return storage_cloud.azure_delta_options(settings)
    if scheme == "gs":
        return storage_cloud.gcs_delta_options(settings)
    if scheme != "s3":
        return {}
    options = {"conditional_put": "etag"}
    endpoint = settings.resolved_endpoint()
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
    options["AWS_REGION"] = settings.resolved_region()
    options["AWS_ALLOW_HTTP"] = str(settings.resolved_allow_http()).lower()
    if settings.addressing_style != "auto":
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = str(settings.addressing_style == "virtual").lower()
    creds = settings.credentials()
    for key, option in (("access_key", "AWS_ACCESS_KEY_ID"), ("secret_key", "AWS_SECRET_ACCESS_KEY")):
        if key in creds:
            options[option] = creds[key]
    if "session_token" in creds:
        options["AWS_SESSION_TOKEN"] = creds["session_token"]
    return options
