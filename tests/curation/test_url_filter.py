"""The url_filter annotator against its peers' own cases: datatrove's URLFilter and dolma's URL taggers.

Both test files are read with `ast` from the shared peer tests (not imported: their packages are not
ours to run), so a case added upstream is a case here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest

from curation.annotate.kernel import AnnotateKernel
from curation.annotators import build
from curation.annotators.url_filter import UrlFilter, UrlFilterConfig, list_entries
from curation.rules import arrow_failing
from pipelines.framework.drop_reason import describe


def _function(path: Path, name: str) -> ast.FunctionDef:
    return next(
        n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name == name
    )


def _list_file(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def datatrove_cases(shared_data: Path) -> tuple[list[str], list[tuple[str, str | bool]]]:
    """URLFilter's extra_domains and its (url, expected) pairs: True = kept, else the reason it gives."""
    test = _function(shared_data / "peer-tests/datatrove/tests/pipeline/filters/test_filters.py", "test_url")
    call = next(
        n for n in ast.walk(test) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "URLFilter"
    )
    domains = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "extra_domains"))
    loop = next(n for n in test.body if isinstance(n, ast.For))
    return list(domains), ast.literal_eval(loop.iter)


def test_datatrove_url_filter_cases(datatrove_cases, tmp_path):
    domains, cases = datatrove_cases
    assert {result for _, result in cases} == {"domain", "subdomain", True}  # every kind is exercised
    annotator = UrlFilter(
        UrlFilterConfig(path=str(_list_file(tmp_path, "list.txt", [d + "\n" for d in domains])))
    )
    for url, expected in cases:
        assert annotator.match(url) == (None if expected is True else expected), url


def _dolma_lists(test_file: Path) -> dict[str, list[str]]:
    """The lines dolma's setUp writes to test_links.txt and test_domains.txt."""
    setup = _function(test_file, "setUp")
    files: dict[str, str] = {}  # variable -> file name, from `test_links = temp_dir + "/test_links.txt"`
    lists: dict[str, list[str]] = {}
    for node in setup.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp):
            files[node.targets[0].id] = Path(ast.literal_eval(node.value.right)).stem
        elif isinstance(node, ast.With):
            variable = node.items[0].context_expr.args[0].id
            lists[files[variable]] = [ast.literal_eval(s.value.args[0]) for s in node.body]
    return lists


def _dolma_cases(test_file: Path, method: str) -> list[tuple[str, bool]]:
    """(url, tagged) pairs of a dolma test method: `doc = self.make_doc(URL)` then assertTrue/False."""
    cases, url = [], None
    for node in _function(test_file, method).body:
        if isinstance(node, ast.Assign):
            url = ast.literal_eval(node.value.args[0])
        elif isinstance(node, ast.Expr):
            cases.append((url, node.value.func.attr == "assertTrue"))
    return cases


@pytest.mark.parametrize(
    "method, list_name", [("test_domains_tagger", "test_domains"), ("test_links_tagger", "test_links")]
)
def test_dolma_url_tagger_cases(shared_data, tmp_path, method, list_name):
    test_file = shared_data / "peer-tests/dolma/tests/python/test_urls.py"
    path = _list_file(tmp_path, f"{list_name}.txt", _dolma_lists(test_file)[list_name])
    cases = _dolma_cases(test_file, method)
    assert len(cases) >= 6 and {tagged for _, tagged in cases} == {True, False}
    annotator = UrlFilter(UrlFilterConfig(path=str(path)))
    assert [(url, annotator.match(url) is not None) for url, _ in cases] == cases


def test_hosts_file_lines_and_comments(tmp_path):
    path = _list_file(
        tmp_path, "hosts", ["# a hosts file\n", "0.0.0.0 ads.one.com ads.two.com\n", "\n", "::1 three.org\n"]
    )
    names, urls = list_entries(path)
    assert names == {"ads.one.com", "ads.two.com", "three.org"} and not urls
    with pytest.raises(ValueError, match="no entries"):
        list_entries(_list_file(tmp_path, "empty", ["# nothing\n"]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_entries(tmp_path / "missing.txt")


def test_column_and_rule_in_the_fused_scan(tmp_path):
    path = _list_file(tmp_path, "list.txt", ["danger.org\n", "http://example.com/foo/bar\n"])
    kernel = AnnotateKernel(build([{"url_filter": {"path": str(path)}}]))
    urls = ["https://x.danger.org/a", "https://example.com/foo/bar/", None, "not a url", "https://safe.net/"]
    batch = pa.RecordBatch.from_pydict({"text": ["t"] * len(urls), "uri": urls})
    out = kernel(batch)
    assert out.schema == kernel.output_schema(batch.schema)
    assert out.column("url_filter_match").to_pylist() == ["domain", "url", None, None, None]
    assert out.column("url_filter_blocked").to_pylist() == [True, True, False, False, False]
    (rule,) = UrlFilter.rules
    assert arrow_failing(out, [rule]) == [["url_filter"], ["url_filter"], [], [], []]
    assert describe("url_filter")
