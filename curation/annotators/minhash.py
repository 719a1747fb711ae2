"""dedup's MinHash signature as an annotator (`minhash`), so one scan serves both curation and dedup.

`minhash_dedup` with `reuse_signatures` and the same settings then skips its own
text scan (it checks a sample of the stored signatures against its settings).
"""

from __future__ import annotations

import pyarrow as pa

from curation.annotators.base import Annotator, BatchContext
from dedup.config import SignatureConfig
from dedup.kernels.minhash import SIGNATURE_FIELD, minhash_column


class MinHash(Annotator):
    """The document's MinHash signature over word shingles (datasketch's permutations)."""

    name = "minhash"
    Config = SignatureConfig
    columns = (SIGNATURE_FIELD,)

    def __init__(self, config: SignatureConfig | None = None):
        super().__init__(config)
        self.spec = self.config.signature_spec()

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        return [minhash_column(ctx.batch, self.spec, ctx.text_column)]
