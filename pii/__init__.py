"""PII detection (Presidio, offline) and redaction.

Presidio's email recognizer calls `tldextract.extract`, whose module-wide extractor fetches
the public suffix list from the network on first use unless it was built with no URLs. That
extractor is built when tldextract is first imported, which in a reused Spark worker may be by
another stage (the URL filter) before any pii module runs, so an environment variable set here
comes too late: the extractor is replaced by one that reads only the snapshot tldextract ships.
Offline, the fetch is a DNS failure and a traceback in the job's log for every worker.
"""

import tldextract
import tldextract.tldextract

tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
