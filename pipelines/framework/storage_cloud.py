"""Azure Blob and Google Cloud Storage clients: pyarrow filesystems and delta-rs options for az:// and gs://.

Kept apart from the S3 client (pipelines/framework/storage_clients.py) because the two providers
name their endpoints differently, and each needs one translation that is easy to get wrong:

- Azure: `azure_endpoint` is the *account's* blob endpoint, as in a connection string's
  `BlobEndpoint`: `https://ACCOUNT.blob.core.windows.net`, or path-style
  `http://127.0.0.1:10000/ACCOUNT` for Azurite and Azure Stack. delta-rs takes that URL as is;
  pyarrow wants an authority and adds the account itself (as a host prefix when the authority starts
  with a dot, as a path otherwise), so the URL is split accordingly. Both must reach the same
  container, or a table's data files and its log would live in different places.
- GCS: pyarrow's client takes an endpoint override, but delta-rs's object_store has no endpoint
  option: it reads the base URL from a service-account document (`gcs_base_url`, with
  `disable_oauth` for an emulator that checks no token). So with an endpoint and no credential
  file, delta-rs gets such a document, which holds no secret.

Credentials are read from the variables the settings name, in the process that builds the client.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pa_fs

from pipelines.framework.storage_settings import GOOGLE_CREDENTIALS, StorageError, StorageSettings


def checked_endpoint(endpoint: str, scheme: str, settings: StorageSettings) -> tuple[str, str, str]:
    """(scheme, host[:port], path) of an endpoint; plain http only where allow_http says so."""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(f"the {scheme}:// endpoint {endpoint!r} is not an http(s) URL")
    if parts.scheme == "http" and not settings.resolved_allow_http(scheme):
        raise StorageError(
            f"the {scheme}:// endpoint {endpoint} is plain http: set "
            f"{settings.allow_http_variable(scheme)}=true or storage.allow_http: true"
        )
    return parts.scheme, parts.netloc, parts.path.strip("/")


def azure_account(settings: StorageSettings) -> str:
    account = os.environ.get(settings.azure_account_env) or os.environ.get("AZURE_STORAGE_ACCOUNT")
    if not account:
        raise StorageError(
            f"az:// needs {settings.azure_account_env} (the storage account name) and "
            f"{settings.azure_key_env} set (or other variable names in storage.azure_account_env/azure_key_env)"
        )
    return account


def azure_authority(endpoint: str, account: str, settings: StorageSettings) -> tuple[str, str]:
    """(scheme, authority) as pyarrow takes them, from the account's blob endpoint URL."""
    scheme, host, path = checked_endpoint(endpoint, "az", settings)
    if path:  # path-style: http://host:port/ACCOUNT
        if path != account:
            raise StorageError(
                f"the az:// endpoint {endpoint} names account {path!r}, but "
                f"{settings.azure_account_env} says {account!r}"
            )
        return scheme, host
    if host.startswith(f"{account}."):  # https://ACCOUNT.blob.core.windows.net
        return scheme, host[len(account) :]
    raise StorageError(
        f"the az:// endpoint {endpoint} names no account: use https://{account}.<blob host> "
        f"or, for Azurite and other path-style servers, http://host:port/{account}"
    )


def azure_filesystem(settings: StorageSettings) -> Any:
    account = azure_account(settings)
    kwargs: dict[str, Any] = {"account_name": account}
    key = os.environ.get(settings.azure_key_env)
    if key:
        kwargs["account_key"] = key
    endpoint = settings.resolved_endpoint("az")
    if endpoint:
        scheme, authority = azure_authority(endpoint, account, settings)
        # pyarrow also asks the data-lake (dfs) service whether the account has a hierarchical
        # namespace: Azure serves it on the `.dfs.` host, emulators on the blob authority itself.
        kwargs.update(
            blob_storage_authority=authority,
            blob_storage_scheme=scheme,
            dfs_storage_authority=authority.replace(".blob.", ".dfs."),
            dfs_storage_scheme=scheme,
        )
    return pa_fs.AzureFileSystem(**kwargs)


def azure_delta_options(settings: StorageSettings) -> dict[str, str]:
    options = {"azure_storage_account_name": azure_account(settings)}
    key = os.environ.get(settings.azure_key_env)
    if key:
        options["azure_storage_account_key"] = key
    endpoint = settings.resolved_endpoint("az")
    if endpoint:
        azure_authority(endpoint, options["azure_storage_account_name"], settings)  # the same checks
        options["azure_endpoint"] = endpoint
    options["allow_http"] = str(settings.resolved_allow_http("az")).lower()
    return options


def gcs_filesystem(settings: StorageSettings) -> Any:
    endpoint = settings.resolved_endpoint("gs")
    if not endpoint:
        return pa_fs.GcsFileSystem(retry_time_limit=None)
    scheme, host, _ = checked_endpoint(endpoint, "gs", settings)
    anonymous = not os.environ.get(GOOGLE_CREDENTIALS)
    return pa_fs.GcsFileSystem(
        anonymous=anonymous, endpoint_override=host, scheme=scheme, retry_time_limit=None
    )


def gcs_delta_options(settings: StorageSettings) -> dict[str, str]:
    endpoint = settings.resolved_endpoint("gs")
    credentials = os.environ.get(GOOGLE_CREDENTIALS)
    options: dict[str, str] = {}
    if credentials:
        options["google_service_account"] = credentials  # a path to a key file, not the key
    if endpoint:
        scheme, host, _ = checked_endpoint(endpoint, "gs", settings)
        options["allow_http"] = str(scheme == "http").lower()
        if not credentials:
            options["google_service_account_key"] = json.dumps(
                {
                    "gcs_base_url": f"{scheme}://{host}",
                    "disable_oauth": True,
                    "client_email": "",
                    "private_key": "",
                    "private_key_id": "",
                }
            )
    return options
