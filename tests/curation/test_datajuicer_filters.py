"""Signals + rules reproduce data-juicer's text filter tests, where one of our signals measures the same quantity.

data-juicer's tests (`peer-tests/data_juicer/tests/ops/filter`) are read, never imported: each case's inputs
(`ds_list`), expected survivors (`tgt_list`) and the filter's keyword arguments (its thresholds) are parsed out
of the test source with `ast` at test time. Our decision is `curation.rules.arrow_failing` over the columns of
the annotators (`curation/annotators`) / `curation.langid.lid176`. data-juicer's filters keep `min <= stat <= max`, i.e. a document fails
on `stat < min` or `stat > max`, which is how our `lt` / `gt` rules read. Filters over a sample's other fields
(suffix, specified field, numeric field, general field) are ported as decide's user rules (PORTED_AS_RULES):
the sample's fields go into the JSON `meta` column, as ingest stores them, and each filter becomes a Spark SQL
`drop_if` over it.

Every test method in that folder is either ported or in NOT_PORTED with the precise reason it does not apply
(docs/peer-tests.md lists NOT_PORTED as a table); `test_every_peer_filter_test_is_classified` fails when
data-juicer's suite changes. docs/curation.md ("data-juicer's filter tests") has the same table in prose.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation.annotate.kernel import AnnotateKernel
from curation.annotators import build
from curation.decide import DecisionRules
from curation.expressions import UserRule
from curation.langid.lid176 import LANGID_FIELDS, langid_arrays
from curation.rules import Rule, arrow_failing, language_rules
from pipelines.ingest.readers.base import meta_json
from tests.conftest import REPO, missing_shared_data

PEER_DIR = "peer-tests/data_juicer/tests/ops/filter"


@pytest.fixture(scope="module")
def dj_filter_tests(shared_data: Path) -> Path:
    folder = shared_data / PEER_DIR
    if not folder.is_dir():
        missing_shared_data(f"data-juicer's filter tests are absent from {folder}")
    return folder


# ------------------------------------------------------------------ reading their tests
def _literal(node: ast.expr, scope: dict):
    """A literal expression, with names resolved from `scope` (their dicts are keyed by `text_key`)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in scope:
        return scope[node.id]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Fields":
        return f"__dj__{node.attr}__"  # data-juicer's reserved field names: Fields.suffix is "__dj__suffix__"
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e, scope) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k, scope): _literal(v, scope) for k, v in zip(node.keys, node.values, strict=True)}
    raise ValueError(f"not a literal: {ast.unparse(node)}")


def _assign_literals(body: list[ast.stmt], scope: dict) -> None:
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                scope[node.targets[0].id] = _literal(node.value, scope)
            except ValueError:
                continue


def _peer_scope(path: Path, method: str) -> tuple[dict, dict]:
    """(the literals a test method sees, the keyword arguments of the one `*Filter(...)` call in it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    scope: dict = {}
    _assign_literals(cls.body, scope)
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == method)
    _assign_literals(fn.body, scope)
    calls = [
        n
        for n in ast.walk(fn)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id.endswith("Filter")
    ]
    assert len(calls) == 1, f"{path.name}::{method}: expected one filter construction, found {len(calls)}"
    return scope, {kw.arg: _literal(kw.value, scope) for kw in calls[0].keywords}


def peer_case(path: Path, method: str) -> tuple[list[dict], list[bool], dict]:
    """(input samples, data-juicer's keep decision per sample, the filter's keyword arguments) of one test method.

    `ds_list` / `tgt_list` (or `target_list`) may be class attributes or locals of the method. The expected
    decisions come from the target list, which must be `ds_list` in order, less the dropped samples (a filter
    never reorders); samples are matched by their text.
    """
    scope, kwargs = _peer_scope(path, method)
    rows = scope["ds_list"]
    texts = [row["text"] for row in rows]
    survivors = [row["text"] for row in scope.get("tgt_list", scope.get("target_list"))]
    keep, i = [], 0
    for text in texts:
        kept = i < len(survivors) and survivors[i] == text
        i += kept
        keep.append(kept)
    assert i == len(survivors), f"{path.name}::{method}: tgt_list is not an ordered subset of ds_list"
    return rows, keep, kwargs


# ------------------------------------------------------------------ our side
def _signals(texts: list[str], short_line_length: int = 30, lang: str = "en") -> pa.Table:
    """The Gopher, C4 and FineWeb annotators' columns for `texts`, all taken to be in `lang`."""
    kernel = AnnotateKernel(build(["gopher", "c4", {"fineweb": {"short_line_length": short_line_length}}]))
    n = len(texts)
    batch = pa.RecordBatch.from_pydict({"text": texts, "uri": [None] * n, "lang": [lang] * n})
    return pa.Table.from_batches([kernel(batch)])


def _range_rules(reason: str, column: str, low, high) -> list[Rule]:
    return [Rule(reason, column, "lt", low), Rule(reason, column, "gt", high)]


def _keeps(table: pa.Table, rules: list[Rule]) -> list[bool]:
    return [not reasons for reasons in arrow_failing(table, rules)]


def _assert_same_lines(texts: list[str]) -> None:
    """data-juicer's lines are `text.splitlines()`; ours (fineweb_*) are the non-blank pieces of `split("\\n")`.

    They are the same lines exactly when a text has no blank or whitespace-only line and no line boundary
    other than "\\n" (`splitlines` also breaks on \\r, \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028, \\u2029). The line
    filters are ported only on inputs where that holds, which this checks rather than assumes.
    """
    for text in texts:
        ours = [line for line in text.split("\n") if line.strip()]
        assert text.splitlines() == ours and ours, f"line definitions differ on {text!r}: port does not apply"


def text_length(texts: list[str], kw: dict) -> list[bool]:
    """TextLengthFilter: `len(text)`, which is our `char_count` exactly."""
    return _keeps(_signals(texts), _range_rules("text_length", "char_count", kw["min_len"], kw["max_len"]))


def average_line_length(texts: list[str], kw: dict) -> list[bool]:
    """AverageLineLengthFilter: `len(text) / len(text.splitlines())`.

    From our signals: `char_count / fineweb_line_count`, equal to it where the lines are the same
    (`_assert_same_lines`). data-juicer gives 0.0 to a text without lines; ours would be null (not measurable).
    """
    _assert_same_lines(texts)
    table = _signals(texts)
    avg = pc.divide(table["char_count"].cast(pa.float64()), table["fineweb_line_count"].cast(pa.float64()))
    table = table.append_column("avg_line_length", avg)
    return _keeps(table, _range_rules("average_line_length", "avg_line_length", kw["min_len"], kw["max_len"]))


def maximum_line_length(texts: list[str], kw: dict) -> list[bool]:
    """MaximumLineLengthFilter: `max(len(line) for line in text.splitlines())`, kept within [min_len, max_len].

    From our signals: `fineweb_short_line_ratio` is the share of lines of at most `fineweb_short_line_length`
    characters, so the longest line is below `min_len` iff that share is 1 at length `min_len - 1`, and above
    `max_len` iff it is below 1 at length `max_len`. Exact where the lines are the same (`_assert_same_lines`).
    """
    _assert_same_lines(texts)
    below_min = _signals(texts, short_line_length=kw["min_len"] - 1)
    within_max = _signals(texts, short_line_length=kw["max_len"])
    too_short = arrow_failing(below_min, [Rule("maximum_line_length", "fineweb_short_line_ratio", "eq", 1.0)])
    too_long = arrow_failing(within_max, [Rule("maximum_line_length", "fineweb_short_line_ratio", "lt", 1.0)])
    return [not (short or long) for short, long in zip(too_short, too_long, strict=True)]


def words_num(texts: list[str], kw: dict) -> list[bool]:
    """WordsNumFilter without tokenization, against our `gopher_word_count`: NOT the same definition.

    data-juicer counts chunks split on " ", "\\n" and "\\t" that stay non-empty after stripping its
    SPECIAL_CHARACTERS (ASCII punctuation, digits, whitespace, ~150 other symbols, every emoji) from their
    ends. `gopher_word_count` counts spaCy tokens not made only of symbol characters. They differ on
    contractions ("it's": 1 word there, 2 here), on numbers ("31231": 0 there, 1 here) and on punctuation
    inside a chunk. On data-juicer's four English cases both counts fall on the same side of [5, 15]
    (ours: 3, 14, 13, 0): this checks agreement on these cases, not a shared definition.
    """
    return _keeps(
        _signals(texts), _range_rules("words_num", "gopher_word_count", kw["min_num"], kw["max_num"])
    )


def language_id_score(texts: list[str], kw: dict) -> list[bool]:
    """LanguageIDScoreFilter: fastText lid.176's top label and probability, like our `lang` / `lang_score`.

    Differences: data-juicer lower-cases the text and uses lid.176.bin; we keep the case and use the
    quantized lid.176.ftz. It keeps `score >= min_score`, we keep `score > min_score` (datatrove's rule),
    which differ only at equality. `lang` may be one code, a list, or empty (any language).
    """
    lang = kw.get("lang", "")
    languages = [lang] if isinstance(lang, str) and lang else list(lang) or None
    table = pa.Table.from_arrays(langid_arrays(texts), schema=pa.schema(LANGID_FIELDS))
    return _keeps(table, language_rules(languages, kw["min_score"]))


# ------------------------------------------------------------------ field filters, as decide's user rules
def _samples(rows: list[dict]) -> pa.Table:
    """data-juicer samples as ingest stores records: `text`, and every other field in the JSON `meta` column."""
    metas = [meta_json({k: v for k, v in row.items() if k != "text"}) for row in rows]
    return pa.table({"text": [row["text"] for row in rows], "meta": metas})


def _keeps_under(rows: list[dict], drop_ifs: list[str]) -> list[bool]:
    """Whether decide, with only these user rules, keeps each sample (Arrow evaluator; tests/curation/
    test_user_rules.py shows Spark's decide gives the same)."""
    named = [{"name": "dj_" + hashlib.sha1(d.encode()).hexdigest()[:10], "drop_if": d} for d in drop_ifs]
    decision = DecisionRules(rules=named, presets=[], languages=None, min_lang_score=None)
    table = _samples(rows)
    return _keeps(table, decision.rule_list(table.column_names))


def _unless(condition: str) -> str:
    """data-juicer keeps a sample where its condition holds, and drops it where the field is missing; a user
    rule drops where `drop_if` is true and keeps where it is null. So a keep condition C becomes this."""
    return f"NOT coalesce({condition}, FALSE)"


def _listed(values: list) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def suffix(rows: list[dict], kw: dict) -> list[bool]:
    """SuffixFilter: keep samples whose `__dj__suffix__` field is one of `suffixes`; every sample without them."""
    if not kw.get("suffixes"):
        return _keeps_under(rows, [])
    return _keeps_under(
        rows, [_unless(f"get_json_object(meta, '$.__dj__suffix__') IN ({_listed(kw['suffixes'])})")]
    )


def specified_field(rows: list[dict], kw: dict) -> list[bool]:
    """SpecifiedFieldFilter on a scalar field: keep samples whose `field_key` (a dotted path) is in `target_value`."""
    path = f"$.{kw['field_key']}"
    return _keeps_under(
        rows, [_unless(f"get_json_object(meta, '{path}') IN ({_listed(kw['target_value'])})")]
    )


def specified_numeric_field(rows: list[dict], kw: dict) -> list[bool]:
    """SpecifiedNumericFieldFilter: keep samples whose `field_key` is a number (or a numeric string, which
    data-juicer converts with float()) in [min_value, max_value]; TRY_CAST gives null for the rest."""
    value = f"TRY_CAST(get_json_object(meta, '$.{kw['field_key']}') AS DOUBLE)"
    return _keeps_under(rows, [_unless(f"{value} BETWEEN {kw['min_value']} AND {kw['max_value']}")])


# data-juicer's GeneralFieldFilter conditions are Python-like; here each is translated by hand to Spark SQL.
# The differences: Python's chained `10 < num < 20` is spelled out with AND; `==` is `=`; `and`/`or` are
# upper-cased only for reading; a sample field is read from the JSON `meta` column and cast (TRY_CAST) to
# the type the condition compares it with. The empty condition keeps every sample: in decide that is no rule
# (an empty `drop_if` is refused).
_FIELDS = {
    "num": "TRY_CAST(get_json_object(meta, '$.num') AS BIGINT)",
    "flag": "TRY_CAST(get_json_object(meta, '$.flag') AS BOOLEAN)",
    "meta_a": "TRY_CAST(get_json_object(meta, '$.__dj__meta__.a') AS BIGINT)",
}
GENERAL_FIELD_SQL: dict[str, str | None] = {
    "10 < num < 20": "10 < {num} AND {num} < 20",
    "num < 10 and flag == True": "{num} < 10 AND {flag} = TRUE",
    "num < 10 or num > 20": "{num} < 10 OR {num} > 20",
    "num <= 5": "{num} <= 5",
    "__dj__meta__.a == 2": "{meta_a} = 2",
    "10 < num < 20 and __dj__meta__.a == 2": "10 < {num} AND {num} < 20 AND {meta_a} = 2",
    "(num < 10 or num > 20) and flag == True and text!='sample3'": (
        "({num} < 10 OR {num} > 20) AND {flag} = TRUE AND text != 'sample3'"
    ),
    "": None,
}


def general_field(rows: list[dict], kw: dict) -> list[bool]:
    """GeneralFieldFilter: keep samples where `filter_condition` holds, through its Spark SQL translation."""
    condition = kw["filter_condition"]
    assert condition in GENERAL_FIELD_SQL, (
        f"no Spark SQL translation of data-juicer's condition {condition!r}"
    )
    sql = GENERAL_FIELD_SQL[condition]
    return _keeps_under(rows, [] if sql is None else [_unless(sql.format(**_FIELDS))])


PORTED_AS_RULES: dict[str, Callable[[list[dict], dict], list[bool]]] = {
    "test_suffix_filter.py::test_case": suffix,
    "test_suffix_filter.py::test_none_case": suffix,
    "test_specified_field_filter.py::test_case": specified_field,
    "test_specified_numeric_field_filter.py::test_case": specified_numeric_field,
    "test_specified_numeric_field_filter.py::test_multi_case": specified_numeric_field,
    "test_specified_numeric_field_filter.py::test_str_case": specified_numeric_field,
    **{
        f"test_general_field_filter.py::{method}": general_field
        for method in (
            "test_simple_comparison",
            "test_logical_and",
            "test_logical_or",
            "test_field_missing",
            "test_nested_field",
            "test_combined_conditions",
            "test_empty_condition",
            "test_complex_condition",
        )
    },
}
# Cases with no samples to decide on, ported as their own test below.
PORTED_AS_CHECKS = {"test_general_field_filter.py::test_invalid_condition"}

PORTED: dict[str, Callable[[list[str], dict], list[bool]]] = {
    "test_text_length_filter.py::test_case": text_length,
    "test_average_line_length_filter.py::test_case_default": average_line_length,
    "test_maximum_line_length_filter.py::test_case_default": maximum_line_length,
    "test_words_num_filter.py::test_case": words_num,
    "test_language_id_score_filter.py::test_en_case": language_id_score,
    "test_language_id_score_filter.py::test_zh_case": language_id_score,
    "test_language_id_score_filter.py::test_none_case": language_id_score,
    "test_language_id_score_filter.py::test_multi_language_case": language_id_score,
}

_WORDS = (
    "words (split on space/newline/tab, lower-cased, data-juicer's special characters stripped from the ends)"
)
_SPM = (
    "tokenization=True: words are pieces of data-juicer's Chinese sentencepiece model (a download we do not "
    "have); our zh words are jieba's (curation/segmenters.py)"
)
_CONTEXT = (
    "same inputs, thresholds and expected output as test_case_default (ported); the rest checks data-juicer's "
    "context cache of split lines, which has no counterpart here"
)
_LLM = "scores samples with a Hugging Face LLM or an LLM API; curation has no LLM scorer"
_HF_TOKENS = (
    "counts tokens of the EleutherAI/pythia-6.9b-deduped Hugging Face tokenizer (a download); we have no "
    "subword tokenizer signal"
)

# A key is "file" (every test in it) or "file::method".
NOT_PORTED: dict[str, str] = {
    "test_alphanumeric_filter.py::test_case": (
        "alnum_ratio = characters with str.isalnum() / len(text); our only alphabetic signal, "
        "gopher_alpha_words_ratio, is the share of spaCy words containing a letter (per word, digits not "
        "counted); no signal counts alphanumeric characters"
    ),
    "test_alphanumeric_filter.py::test_token_case": f"alpha_token_ratio = letters / tokens; it {_HF_TOKENS}",
    "test_average_line_length_filter.py::test_case_context": _CONTEXT,
    "test_maximum_line_length_filter.py::test_case_context": _CONTEXT,
    "test_character_repetition_filter.py::test_case": (
        "char_rep_ratio (BigScience): of the distinct character 5-grams, the sqrt(#distinct) most frequent that "
        "occur more than once, their occurrences / all occurrences. Our character-level repetition signal "
        "fineweb_char_dup_ratio is characters of repeated whole lines / non-newline characters, and the Gopher "
        "repetition signals use lines, paragraphs and word n-grams; none counts character n-grams"
    ),
    "test_character_repetition_filter.py::test_existing_stats": (
        "checks that compute_stats keeps precomputed stats (data-juicer's caching), not a filter decision"
    ),
    "test_flagged_words_filter.py::test_en_case": (
        f"flagged_words_ratio = {_WORDS} found in data-juicer's flagged_words.json / words, dropped above "
        "0.045; that list is downloaded at run time and is not in the shared data. Our word_blocklist counts "
        "whole-word matches of a user-supplied file (none bundled) and fails on a count (min_blocked_words), "
        "not a ratio; writing this test's words into our list would make it circular"
    ),
    "test_flagged_words_filter.py::test_zh_case": (
        "as test_en_case (flagged_words.json absent, ratio not count), and " + _SPM + ", plus word bigrams "
        "(use_words_aug)"
    ),
    "test_special_characters_filter.py": (
        "special_char_ratio = characters in data-juicer's SPECIAL_CHARACTERS (ASCII punctuation, digits, "
        "whitespace, ~150 other symbols, every emoji) / len(text); we have no per-character symbol share: our "
        "symbol set (curation.signals.SYMBOL_SET) only decides whether a whole word is a symbol word for the "
        "Gopher counts, and holds no digits, whitespace or emoji"
    ),
    "test_stopwords_filter.py::test_en_case": (
        f"stopwords_ratio = {_WORDS} found in data-juicer's stopwords.json for the language / words, kept at "
        ">= 0.3 (the list is a download, not in the shared data). Our gopher_stop_word_count is the number of "
        "distinct Gopher stop words present (8: the, be, to, of, and, that, have, with): a count over another list"
    ),
    "test_stopwords_filter.py::test_zh_case": (
        "as test_en_case (stopwords.json absent, ratio not count), and " + _SPM + ", plus word bigrams"
    ),
    "test_word_repetition_filter.py::test_en_case": (
        f"word_rep_ratio = of the 3-grams of {_WORDS}, the occurrences of 3-grams seen more than once / all "
        "3-gram occurrences. Our word n-gram signals are Gopher's, over spaCy words and weighted by "
        "characters: gopher_top_{2,3,4}_gram_char_frac (characters of the single most frequent n-gram x its "
        "count / text characters) and gopher_dup_{5..10}_gram_char_frac (greedy left-to-right scan); none "
        "counts all occurrences of repeated 3-grams"
    ),
    "test_word_repetition_filter.py::test_zh_case": (
        "a different repetition definition (see test_en_case), and " + _SPM
    ),
    "test_words_num_filter.py::test_zh_case": (
        _SPM
        + ", so '根据算子使用情况增量安装方案确定' has 8 jieba words for us and fewer than 10 pieces for "
        "data-juicer: both drop it (outside [10, 25]), but from counts of different splits"
    ),
    "test_token_num_filter.py": f"num_token {_HF_TOKENS}",
    "test_perplexity_filter.py": (
        "perplexity under a KenLM 5-gram model over sentencepiece pieces, both trained on Wikipedia and "
        "downloaded by data-juicer; we compute no language-model perplexity"
    ),
    "test_llm_perplexity_filter.py": "perplexity under a Hugging Face LLM (Qwen2.5-0.5B); " + _LLM,
    "test_llm_analysis_filter.py": _LLM,
    "test_llm_difficulty_score_filter.py": _LLM,
    "test_llm_quality_score_filter.py": _LLM + " (our model-based quality is a fastText classifier we train)",
    "test_llm_task_relevance_filter.py": _LLM,
    "test_in_context_influence_filter.py": _LLM,
    "test_instruction_following_difficulty_filter.py": _LLM,
    "test_text_embd_similarity_filter.py": "similarity of text embeddings (Qwen3-Embedding); we have no embedding signal",
    "test_text_pair_similarity_filter.py": "CLIP similarity of two texts; we have no embedding signal",
    "test_phrase_grounding_recall_filter.py": "image + text grounding with OWL-ViT; not a text quality signal",
    "test_text_action_filter.py": "counts verbs with a spaCy model's tagger (a download); we use spaCy's tokenizer only",
    "test_text_entity_dependency_filter.py": (
        "entity dependencies from a spaCy model's parser (a download); we use spaCy's tokenizer only"
    ),
    "test_specified_field_filter.py::test_list_case": (
        "the field is a list: data-juicer keeps a sample when every element is in target_value; user rules "
        "have no array functions (get_json_object gives the list as JSON text), so this needs code"
    ),
}


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("case", list(PORTED))
def test_datajuicer_filter_case(case: str, dj_filter_tests: Path):
    file, method = case.split("::")
    rows, theirs, kwargs = peer_case(dj_filter_tests / file, method)
    texts = [row["text"] for row in rows]
    ours = PORTED[case](texts, kwargs)
    assert list(zip(texts, ours, strict=True)) == list(zip(texts, theirs, strict=True))


@pytest.mark.parametrize("case", list(PORTED_AS_RULES))
def test_datajuicer_field_filter_case_as_user_rule(case: str, dj_filter_tests: Path):
    file, method = case.split("::")
    rows, theirs, kwargs = peer_case(dj_filter_tests / file, method)
    ours = PORTED_AS_RULES[case](rows, kwargs)
    texts = [row["text"] for row in rows]
    assert list(zip(texts, ours, strict=True)) == list(zip(texts, theirs, strict=True))


def test_general_field_invalid_condition_is_refused(dj_filter_tests: Path):
    """data-juicer raises ValueError on constructing the filter; decide refuses the rule when the spec loads."""
    _, kwargs = _peer_scope(dj_filter_tests / "test_general_field_filter.py", "test_invalid_condition")
    with pytest.raises(ValueError, match="rule 'dj_invalid'.*not supported"):
        UserRule(name="dj_invalid", drop_if=kwargs["filter_condition"])


def test_not_ported_table_matches_the_docs():
    """docs/peer-tests.md is where the reasons are read; it must list exactly NOT_PORTED."""
    page = (REPO / "docs" / "peer-tests.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `([^`]+)` \| (.*) \|$", page, flags=re.MULTILINE))
    assert documented == NOT_PORTED


def _peer_test_methods(folder: Path) -> set[str]:
    found = set()
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.add(f"{path.name}::{node.name}")
    return found


def test_every_peer_filter_test_is_classified(dj_filter_tests: Path):
    found = _peer_test_methods(dj_filter_tests)
    ported = set(PORTED) | set(PORTED_AS_RULES) | PORTED_AS_CHECKS
    classified = ported | set(NOT_PORTED)
    assert not ported & set(NOT_PORTED)
    assert sorted(c for c in found if c not in classified and c.split("::")[0] not in classified) == []
    stale = [c for c in classified if c not in found and not any(f.startswith(f"{c}::") for f in found)]
    assert stale == []


def test_case_reader_reads_their_thresholds(dj_filter_tests: Path):
    texts, keep, kwargs = peer_case(
        dj_filter_tests / "test_average_line_length_filter.py", "test_case_default"
    )
    assert kwargs == {"min_len": 10, "max_len": 20, "batch_size": 3}
    assert len(texts) == 6 and keep == [False, False, True, False, False, True]
