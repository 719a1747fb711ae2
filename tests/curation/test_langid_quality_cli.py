"""Language ID accuracy on lingua's data, quality classifier cross-validation, and the CLI sub-apps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from curation.cli import decontam, langid_app, quality_app
from curation.langid.evaluate import evaluate_folder
from curation.langid.lid176 import langid_arrays

runner = CliRunner()


def test_langid_columns_and_newlines():
    lang, score, top = langid_arrays(
        ["The cat sat on the mat.\nIt was happy.", None, "  ", "Der Hund schläft im Garten."]
    )
    assert lang.to_pylist() == ["en", None, None, "de"]
    assert score[0].as_py() > 0.5 and score[1].as_py() is None
    assert [t["lang"] for t in top[0].as_py()][0] == "en" and len(top[0].as_py()) == 3


def test_langid_accuracy_on_lingua_sentences_sample(shared_data: Path):
    """A 30-sentence sample per language, lid.176 alone (test_langid.py checks the ensemble on a whole half)."""
    result = evaluate_folder(
        shared_data / "langid/lingua/language-testdata/sentences", limit=30, backends=["fasttext"]
    )
    fasttext = result["backends"]["fasttext"]
    assert result["languages"] == 75
    assert fasttext["overall_supported"] >= 0.85
    assert fasttext["per_language"]["en"]["accuracy"] >= 0.9
    assert not fasttext["per_language"]["zu"]["supported"]  # lid.176 has no Zulu label
    assert {"gold": "bs", "predicted": "hr"} in [
        {k: c[k] for k in ("gold", "predicted")} for c in fasttext["confusions"]
    ]


def test_langid_eval_cli_compares_backends(shared_data: Path, tmp_path: Path):
    src = shared_data / "langid/lingua/language-testdata/sentences"
    for code in ("fr", "zu"):
        (tmp_path / f"{code}.txt").write_text("\n".join((src / f"{code}.txt").read_text().splitlines()[:40]))
    out = runner.invoke(langid_app, ["eval", str(tmp_path), "-b", "fasttext", "-b", "ensemble"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output.strip().splitlines()[-1])
    backends = payload["backends"]
    assert set(backends) == {"fasttext", "ensemble"} and payload["half"] == "report"
    assert set(backends["ensemble"]["per_language"]) == {"fr", "zu"}
    assert backends["fasttext"]["per_language"]["zu"]["accuracy"] == 0
    assert backends["ensemble"]["per_language"]["zu"]["accuracy"] >= 0.9
    assert backends["fasttext"]["texts_per_s"] > 0 and backends["ensemble"]["routed_to_lingua"] > 0
    bad = runner.invoke(langid_app, ["eval", str(tmp_path), "-b", "cld3"])
    assert bad.exit_code != 0 and "cld3" in bad.output


def test_langid_detect_cli_escapes_corpus_text(tmp_path: Path):
    zulu = "Ngiyabonga kakhulu ngosizo lwakho, sizobonana kusasa.\x1b]0;x\x07"
    out = runner.invoke(langid_app, ["detect", zulu, "--excerpt", "200"])
    assert out.exit_code == 0, out.output
    lang, score, model, script, text = out.output.rstrip("\n").split("\t")
    assert (lang, model, script) == ("zu", "lingua", "Latn") and 0 < float(score) <= 1
    assert "\x1b" not in out.output and "\\x1b]0;x\\x07" in text
    lines = tmp_path / "texts.txt"
    lines.write_text("Le chat dort sur le canapé depuis ce matin.\nDer Hund schläft im Garten.\n")
    out = runner.invoke(langid_app, ["detect", str(lines), "--backend", "fasttext"])
    rows = [row.split("\t") for row in out.output.splitlines()]
    assert [(row[0], row[2]) for row in rows] == [("fr", "fasttext"), ("de", "fasttext")]


def test_quality_cross_validation_on_dclm(dclm):
    from curation.quality.model import cross_validate

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


def test_quality_cli_reads_text_no_utf8_can_hold(shared_data: Path, tmp_path: Path):
    """A JSON "\\ud800" escape used to end training in a UnicodeEncodeError and scoring in a TypeError
    from fastText's binding; the model reads it with the surrogate as "?"."""
    lines = (shared_data / "quality/dclm/majority_minus_agreement.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "text": first["text"] + "\ud800"})  # ASCII JSON: an escape
    data = tmp_path / "with_surrogate.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = tmp_path / "q.bin"
    out = runner.invoke(quality_app, ["train", "--data", str(data), "--out", str(model)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(quality_app, ["eval", "--model", str(model), "--data", str(data)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["documents"] == 218
    out = runner.invoke(langid_app, ["detect", "\udcff\udcfe Der Hund schläft im Garten."])
    assert out.exit_code == 0 and out.output.startswith("de\t"), out.output


def test_decontam_cli_reports_planted_item(shared_data: Path, tmp_path: Path, dclm):

    app = typer.Typer()
    app.command()(decontam)
    question = json.loads((shared_data / "decontam/gsm8k/test.jsonl").open().readline())["question"]
    docs = tmp_path / "docs.jsonl"
    rows = [{"doc_id": f"d{i}", "text": r["text"]} for i, r in enumerate(dclm[:30])]
    rows[7]["text"] += "\n" + question
    rows[7]["doc_id"] = "d7\x1b]0;owned\x07\u202egpj.exe\x9b"  # a hostile id from the corpus
    docs.write_text("\n".join(json.dumps(r) for r in rows))
    out = runner.invoke(app, ["--benchmark", str(shared_data / "decontam/gsm8k/test.jsonl"), str(docs)])
    assert out.exit_code == 0, out.output
    assert not set(out.output) & {"\x1b", "\x07", "\u202e", "\x9b"}  # nothing reaches the terminal raw
    payload = json.loads(out.output.strip().splitlines()[-1])
    assert payload["documents"] == 30
    assert [m["id"] for m in payload["matches"]] == ["d7\\x1b]0;owned\\x07\\u202egpj.exe\\x9b"]
    assert payload["matches"][0]["benchmark"] == "gsm8k/test"


@pytest.mark.parametrize("content", ["not json\n", '{"answer": "x"}\n'])
def test_decontam_bad_benchmark_file_is_a_clear_error(tmp_path: Path, content: str):
    from curation.decontam.index import BenchmarkFileError, BenchmarkSpec, DecontamIndex

    bad = tmp_path / "bench.jsonl"
    bad.write_text(content)
    with pytest.raises(BenchmarkFileError, match="bench.jsonl"):
        DecontamIndex.build([BenchmarkSpec(bad)])


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"text": "a sentence", "label": 0.7}', "label must be 0 or 1, not 0.7"),
        ('{"text": "a sentence", "label": true}', "label must be 0 or 1, not True"),
        ('{"text": 5, "label": 1}', "text must be a string, not int"),
        ('{"text": "a sentence"}', "label must be 0 or 1, not None"),
    ],
)
def test_quality_train_names_the_line_of_bad_labelled_data(tmp_path: Path, line: str, says: str):
    """A label that would silently read as a class (0.7 as 0, true as 1) or a text that is not one stops
    the command at its line, as a usage error."""
    data = tmp_path / "labelled.jsonl"
    data.write_text('{"text": "fine", "label": 1}\n' + line + "\n", encoding="utf-8")
    out = CliRunner(env={"COLUMNS": "400"}).invoke(
        quality_app, ["train", "--data", str(data), "-o", str(tmp_path / "m")]
    )
    assert out.exit_code == 2 and f"{data}:2: {says}" in out.output, out.output


def test_decontam_names_inputs_it_cannot_read(tmp_path: Path, shared_data: Path):
    app = typer.Typer()
    app.command()(decontam)
    gsm8k = str(shared_data / "decontam/gsm8k/test.jsonl")
    numeric = tmp_path / "numeric.jsonl"
    numeric.write_text('{"text": 5, "doc_id": "a"}\n')
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"question\ncaf\xe9\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    for args, says in (
        ([str(numeric), "-b", gsm8k], f"{numeric}:1: text is a int, not a string"),
        ([str(folder), "-b", gsm8k], f"{folder} is a folder but not a Delta table"),
        ([str(numeric), "-b", str(latin)], f"{latin}:"),
        ([str(numeric), "-b", gsm8k, "--ngram", "0"], "--ngram"),
    ):
        out = CliRunner(env={"COLUMNS": "400"}).invoke(app, args)
        assert out.exit_code == 2 and says in out.output and "Traceback" not in out.output, (args, out.output)


def test_a_diverging_learning_rate_is_halved_and_the_rate_used_recorded(dclm, tmp_path: Path):
    """fastText's "Encountered NaN" (seen once in CI at the default rate) ended training; lr 50 diverges
    on these documents every time, so it shows the retry: a halved rate, written into the metadata."""
    from curation.quality.model import TrainParams, train

    meta = train(
        [r["text"] for r in dclm], [r["label"] for r in dclm], tmp_path / "q.bin", TrainParams(lr=50.0)
    )
    assert meta["requested_lr"] == 50.0 and meta["params"]["lr"] in (25.0, 12.5, 6.25)
    assert json.loads((tmp_path / "q.bin.json").read_text())["params"]["lr"] == meta["params"]["lr"]
    with pytest.raises(ValueError, match="diverged .* from 1000000.0 down to 62500.0"):
        train([r["text"] for r in dclm], [r["label"] for r in dclm], tmp_path / "q2.bin", TrainParams(lr=1e6))


def test_langid_detect_refuses_what_is_not_a_text_file(tmp_path: Path):
    """A mistyped file name was labelled as if it were the text, a folder too, a binary file read as
    thousands of texts; \\f and U+2028 split lines, so output lines no longer matched the file's."""
    for source, message in (
        (str(tmp_path / "notthere.txt"), "no file"),
        (str(tmp_path), "is a folder"),
    ):
        out = runner.invoke(langid_app, ["detect", source])
        assert out.exit_code == 2 and message in out.output, out.output
    forced = runner.invoke(
        langid_app, ["detect", str(tmp_path / "notthere.txt"), "--text", "--backend", "fasttext"]
    )
    assert forced.exit_code == 0 and forced.output.count("\n") == 1
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"ELF\0\1\2" + bytes(range(256)) * 40)
    out = runner.invoke(langid_app, ["detect", str(binary)])
    assert out.exit_code == 2 and "binary file" in out.output
    lines = tmp_path / "two.txt"
    lines.write_text(
        "Le chat dort sur le canapé.\fLe chien aussi.\u2028Et moi.\nDer Hund schläft im Garten.\n"
    )
    rows = runner.invoke(langid_app, ["detect", str(lines), "--backend", "fasttext"]).output.splitlines()
    assert [row.split("\t")[0] for row in rows] == ["fr", "de"]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(
        json.dumps({"text": "Der Hund schläft im Garten und die Katze auch.", "url": "https://x"}) + "\n"
    )
    rows = runner.invoke(langid_app, ["detect", str(jsonl), "--backend", "fasttext"]).output.splitlines()
    assert len(rows) == 1 and rows[0].split("\t")[0] == "de" and '{"text"' not in rows[0]
