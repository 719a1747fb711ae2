"""Spark master URLs, checked before a session or spark-submit is started.

Why here: Spark parses the master only once the JVM is up, and a mistyped one ends in a Java stack
trace (or, for spark-submit, fails later in the background). Every place a master enters (a spec's
`spark.master`, `--master` options, `refinery submit`) checks it with this one function instead.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

LOCAL = re.compile(r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]")
FORMS = "local[*], local[N], spark://HOST:PORT, k8s://https://HOST:PORT, mesos://HOST:PORT or yarn"


def check_master_url(value: str) -> str:
    """`value` when it is a master URL Spark accepts; ValueError naming the accepted forms otherwise."""
    if value == "yarn" or LOCAL.fullmatch(value):
        return value
    scheme, _, rest = value.partition("://")
    if scheme in ("k8s", "mesos") and rest:  # k8s://https://HOST:PORT, mesos://zk://... : Spark's own forms
        return value
    if scheme != "spark" or not rest:
        raise ValueError(f"{value!r} is not a Spark master URL: use {FORMS}")
    for address in rest.split(","):  # a standalone master with standbys lists them all
        try:
            parsed = urlparse(f"spark://{address}")
            port = parsed.port
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        if not parsed.hostname or port is None:
            raise ValueError(f"{value!r}: each master is HOST:PORT, e.g. spark://127.0.0.1:7077")
    return value
