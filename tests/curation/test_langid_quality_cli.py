"""Language ID accuracy on lingua's data, quality classifier cross-validation, and the CLI sub-apps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.cli import decontam, langid_app, quality_app
from curation.langid import langid_arrays
from curation.langid_eval import evaluate_folder

runner = CliRunner()


def test_langid_columns_and_newlines():
    lang, score, top = langid_arrays(
        ["The cat sat on the mat.\nIt was happy.", None, "  ", "Der Hund schläft im Garten."]
    )
    assert lang.to_pylist() == ["en", None, None, "de"]
    assert score[0].as_py() > 0.5 and score[1].as_py() is None
    assert [t["lang"] for t in top[0].as_py()][0] == "en" and len(top[0].as_py()) == 3


def test_langid_accuracy_on_lingua_sentences_sample(shared_data: Path):
    """A 30-sentence sample per language (the benchmark script runs all lines and lengths)."""
    result = evaluate_folder(shared_data / "langid/lingua/language-testdata/sentences", limit=30)
    assert result["languages"] == 75
    assert result["overall_supported"] >= 0.85
    assert result["per_language"]["en"]["accuracy"] >= 0.9
    assert not result["per_language"]["zu"]["supported"]  # lid.176 has no Zulu label


def test_langid_eval_cli(shared_data: Path, tmp_path: Path):
    src = shared_data / "langid/lingua/language-testdata/sentences"
    for code in ("fr", "ja"):
        (tmp_path / f"{code}.txt").write_text("\n".join((src / f"{code}.txt").read_text().splitlines()[:20]))
    out = runner.invoke(langid_app, ["eval", str(tmp_path)])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output.strip().splitlines()[-1])
    assert set(payload["per_language"]) == {"fr", "ja"} and payload["overall"] >= 0.9


def test_quality_cross_validation_on_dclm(dclm):
    from curation.quality import cross_validate

    result = cross_validate([r["text"] for r in dclm], [r["label"] for r in dclm], folds=5)
    assert result["documents"] == 218 and len(result["fold_roc_auc"]) == 5
    assert result["roc_auc"] > 0.6


def test_quality_train_and_eval_cli(shared_data: Path, tmp_path: Path):
    data = shared_data / "quality/dclm/majority_minus_agreement.jsonl"
    model = tmp_path / "q.bin"
    out = runner.invoke(quality_app, ["train", "--data", str(data), "--out", str(model)])
    assert out.exit_code == 0, out.output
    meta = json.loads((tmp_path / "q.bin.json").read_text())
    assert meta["documents"] == 218 and meta["positives"] == 120
    out = runner.invoke(quality_app, ["eval", "--model", str(model), "--data", str(data)])
    assert out.exit_code == 0, out.output
    scores = json.loads(out.output.strip().splitlines()[-1])
    assert (
        set(scores) >= {"accuracy", "precision", "recall", "roc_auc"} and scores["accuracy"] > 0.8
    )  # training data
    bad = runner.invoke(quality_app, ["train", "--out", str(model)])
    assert bad.exit_code != 0 and "--data" in bad.output


def test_decontam_cli_reports_planted_item(shared_data: Path, tmp_path: Path, dclm):
    import typer

    app = typer.Typer()
    app.command()(decontam)
    question = json.loads((shared_data / "decontam/gsm8k/test.jsonl").open().readline())["question"]
    docs = tmp_path / "docs.jsonl"
    rows = [{"doc_id": f"d{i}", "text": r["text"]} for i, r in enumerate(dclm[:30])]
    rows[7]["text"] += "\n" + question
    docs.write_text("\n".join(json.dumps(r) for r in rows))
    out = runner.invoke(app, ["--benchmark", str(shared_data / "decontam/gsm8k/test.jsonl"), str(docs)])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output.strip().splitlines()[-1])
    assert payload["documents"] == 30 and [m["id"] for m in payload["matches"]] == ["d7"]
    assert payload["matches"][0]["benchmark"] == "gsm8k/test"


@pytest.mark.parametrize("content", ["not json\n", '{"answer": "x"}\n'])
def test_decontam_bad_benchmark_file_is_a_clear_error(tmp_path: Path, content: str):
    from curation.decontam import BenchmarkFileError, BenchmarkSpec, DecontamIndex

    bad = tmp_path / "bench.jsonl"
    bad.write_text(content)
    with pytest.raises(BenchmarkFileError, match="bench.jsonl"):
        DecontamIndex.build([BenchmarkSpec(bad)])
