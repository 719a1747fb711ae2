"""Language ID as an annotator: `lang`, `lang_score`, `lang_model`, `lang_script`, `lang_top3`.

It wraps `curation.langid.ensemble` (the backends and their calibration) and runs
before every other annotator of the scan, because the word split, and with it
every heuristic signal, depends on the document's language. The language rules
themselves (`languages`, `min_lang_score`) are decide's settings, not a preset.
"""

from __future__ import annotations

import pyarrow as pa

from curation.annotators.base import Annotator, BatchContext
from curation.langid.ensemble import LANGID_COLUMNS, LangIdConfig, langid_columns


class LangId(Annotator):
    """Each document's language: lid.176, lingua, or lid.176 with lingua where it is weak (the default)."""

    name = "langid"
    Config = LangIdConfig
    columns = LANGID_COLUMNS
    language = True

    def compute(self, ctx: BatchContext) -> list[pa.Array]:
        arrays = langid_columns(ctx.texts(), self.config)
        ctx.langs = arrays[0].to_pylist()
        return arrays
