"""Real documents with real benchmark items pasted into some of them, for the decontamination tests."""

from __future__ import annotations

from pathlib import Path

from pipelines.ingest.readers.jsonl import json_lines

GSM8K = "decontam/gsm8k/test.jsonl"
HUMANEVAL = "decontam/humaneval/data/HumanEval.jsonl.gz"


def planted(shared_data: Path, texts: list[str]) -> tuple[list[str], set[int]]:
    """`texts` with 10 GSM8K questions and 10 HumanEval prompts pasted into every third document
    from the second on, and the indexes of the documents that got one."""
    gsm = [record["question"] for _, record in json_lines(shared_data / GSM8K)][:10]
    human = [record["prompt"] for _, record in json_lines(shared_data / HUMANEVAL)][:10]
    out = list(texts)
    targets = set()
    for i, item in enumerate(gsm + human):
        doc = 3 * i + 1
        if doc >= len(out):
            break
        words = out[doc].split(" ")
        cut = len(words) // 2
        out[doc] = " ".join(words[:cut]) + "\n" + item + "\n" + " ".join(words[cut:])
        targets.add(doc)
    return out, targets
