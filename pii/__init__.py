"""PII detection (Presidio, offline) and redaction.

tldextract, which Presidio imports, fetches the public suffix list from the
network unless this variable is set; it must be set before any presidio import,
hence here, where every pii module passes first.
"""

import os

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
