"""spaCy's greedy NER decoder, run for a whole batch of documents at once.

Why: profiling the `pii` stage showed that in spaCy's transition-based NER about
half of the time goes to the greedy decoding loop, not to the network. For every
token of every document spaCy calls the validity function of each of its 74
actions through a function pointer (`TransitionSystem.set_valid`), one state at a
time. The network part (tok2vec and the precomputed first layer) is already a few
large matrix products per batch.

Here the same weights are used, and the network part is spaCy's own code
(`model.layers[...].predict`). Only the loop is rewritten: at each step all
unfinished documents of the batch advance together. Each step builds the
feature sum and maxout, takes the hidden-to-scores product with the same BLIS
`sgemm` spaCy calls, and evaluates the validity rules of the BILUO system as
boolean arrays. The rules are the ones in spaCy's `ner.pyx`, without the branches
for preset entities, because the documents are fresh from the tokenizer. Every
float operation is the one spaCy performs, in the same order, so the chosen
actions, and so the entities, are the same bit for bit.

What is supported is checked, not assumed: `unsupported_reason` names the first
property of a pipeline this decoder does not reproduce (beam search, another
transition system or feature set, a listener tok2vec, another spaCy minor
version). `verify` compares both decoders on probe texts. The engine uses the
batched decoder only when both pass (`ner_decoder: auto`), and otherwise falls back
to spaCy's own decoder, saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import blis.py
import numpy as np
import spacy
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc, Span

# spaCy minor versions whose ner.pyx / parser_model.pyx this decoder was written from and tested against.
SUPPORTED_SPACY = ("3.8",)
BEGIN, IN, LAST, UNIT, OUT = range(5)
MOVE_CODES = {"B": BEGIN, "I": IN, "L": LAST, "U": UNIT, "O": OUT}
# Stepping documents together pays a fixed numpy cost per step; with one document spaCy's C loop is faster
# (1 KB documents, one core: 47 vs 82 ms alone, 42 vs 46 for two, 46 vs 35 for four), so a lone document
# (one `analyze` call, a retried document) goes to spaCy's decoder, whose entities are the same.
MIN_DOCS = 2
N_FEATURES = 3  # BiluoPushDown's features: B(0), first token of the open entity, B(0) - 1 inside it
# Probe texts for `verify`: names, nested punctuation, entities at document ends, whitespace runs,
# line breaks inside names, non-Latin script, an empty document and a single token.
PROBES = (
    "Barack Obama met Angela Merkel in Berlin on 3 March 2015.",
    "Contact Dr. Jane O'Connor-Smith (jane@example.org) or Mr. Li Wei.",
    "  \n\n  John\n\nSmith   went   to  New\nYork City  ",
    "Apple Inc. hired Tim Cook. Microsoft's Satya Nadella replied.",
    "",
    "Elizabeth",
    "Письмо от Ивана Петрова пришло в Москву.",
    "The meeting (with Maria Garcia, Ahmed Ali & Chen Jing) ended at 5 pm EST on Friday.",
    "JOHN DOE\tSSN 078-05-1120\tPhone +1 (212) 555-0199\nAddress: 10 Downing Street, London SW1A 2AA",
    "I saw   Paris Hilton and\nParis in Texas, then Jordan went to Jordan.",
)


def unsupported_reason(ner: object) -> str | None:
    """Why the batched decoder cannot reproduce this component's output, or None when it can."""
    if spacy.__version__.rsplit(".", 1)[0] not in SUPPORTED_SPACY:
        return f"spaCy {spacy.__version__} is not one of the tested versions {SUPPORTED_SPACY}"
    if not isinstance(ner, EntityRecognizer):
        return f"the `ner` component is a {type(ner).__name__}, not spaCy's transition-based EntityRecognizer"
    if ner.cfg.get("beam_width", 1) != 1:
        return f"beam search (beam_width={ner.cfg['beam_width']}) is not the greedy decoder"
    model = ner.model
    if model.name != "parser_model" or len(model.layers) != 3 or not model.attrs.get("has_upper"):
        return f"the NER model {model.name!r} is not the tok2vec >> precomputable affine >> linear model"
    if model.layers[0].name.startswith("tok2vec-listener") or "listener" in model.layers[0].name:
        return "the NER reads a shared tok2vec (listener); run spaCy's decoder"
    lower = model.layers[1]
    if lower.name != "precomputable_affine" or lower.get_dim("nF") != N_FEATURES:
        return f"the NER's state features are not the {N_FEATURES} BILUO features"
    names = [ner.moves.get_class_name(i) for i in range(ner.moves.n_moves)]
    if any(n[0] not in MOVE_CODES or (len(n) > 1 and n[1] != "-") for n in names):
        return "the NER has actions other than B, I, L, U and O"
    return None


@dataclass
class _Moves:
    """The action table: move type and label id of each class, as arrays over classes."""

    move: np.ndarray  # (n_classes,) int: BEGIN ... OUT
    label: np.ndarray  # (n_classes,) uint64 string ids, 0 for the unlabelled U and O

    @classmethod
    def of(cls, ner: EntityRecognizer) -> _Moves:
        moves, labels = [], []
        for i in range(ner.moves.n_moves):
            name = ner.moves.get_class_name(i)
            moves.append(MOVE_CODES[name[0]])
            text = name[2:]
            labels.append(ner.vocab.strings[text] if text else 0)
        return cls(np.array(moves), np.array(labels, dtype=np.uint64))


class BatchedNer:
    """Runs a spaCy EntityRecognizer on a list of tokenized docs and sets `doc.ents` like `ner.pipe`."""

    def __init__(self, ner: EntityRecognizer):
        reason = unsupported_reason(ner)
        if reason:
            raise ValueError(f"the batched NER decoder cannot run this pipeline: {reason}")
        self.ner = ner
        self.tok2vec, self.lower, self.upper = ner.model.layers
        self.moves = _Moves.of(ner)
        self.unseen = np.array(sorted(ner.model.attrs.get("unseen_classes") or ()), dtype=np.int64)
        # The parts of validity fixed per action: B, I, L and U need a label (the unlabelled U exists only
        # for preset blocked tokens), I and L must continue the open entity's label.
        self.label_ok = (self.moves.label != 0) | (self.moves.move == OUT)
        self.matches_open = np.isin(self.moves.move, (IN, LAST))
        self.second_opinion: SecondOpinion | None = None

    def __call__(self, docs: Sequence[Doc]) -> list[Doc]:
        docs = list(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        flags = _token_flags(docs, lengths)
        if flags is None or (np.count_nonzero(lengths) < MIN_DOCS and self.second_opinion is None):
            # Preset entities take branches of the validity rules not reproduced here.
            return list(self.ner.pipe(docs, batch_size=max(1, len(docs))))
        unsure: dict[int, list[tuple[int, int, int]]] = {}
        ents = self._decode(docs, lengths, *flags, unsure) if lengths.sum() else {}
        for i, doc in enumerate(docs):
            doc.set_ents(
                [Span(doc, start, end, label=int(label)) for start, end, label in ents.get(i, [])],
                default="outside",
            )
            if self.second_opinion is not None:
                label = self.second_opinion.label
                doc.spans[UNSURE] = [
                    Span(doc, s, e, label=label, kb_id=NEAR_OUTSIDE if outside else NEAR_RELABEL)
                    for s, e, outside in unsure.get(i, [])
                ]
        return docs

    def _decode(
        self,
        docs: list[Doc],
        lengths: np.ndarray,
        space: np.ndarray,
        next_sent_start: np.ndarray,
        unsure: dict[int, list[tuple[int, int, int]]],
    ) -> dict[int, list[tuple[int, int, int]]]:
        """Greedy BILUO decoding of all docs in lock step; entities per doc index, in document order.
        With a second opinion, its near misses go to `unsure` as (start, end, 1 if the decoder took O)."""
        tokvecs = self.tok2vec.predict(docs)
        cached = self.lower.predict(tokvecs)  # (1 + tokens, nF, nO, nP); row 0 is the padding
        n_rows, n_feats = cached.shape[0], cached.shape[1]
        cached = cached.reshape(n_rows, n_feats, -1)
        net = (self.lower.get_param("b").reshape(-1), self.lower.get_dim("nP"), *self._output_layer())

        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        live = np.flatnonzero(lengths > 0)
        doc_of, offset, length = live, offsets[live], lengths[live]
        b = np.zeros(len(live), dtype=np.int64)
        is_open = np.zeros(len(live), dtype=bool)
        ent_start = np.zeros(len(live), dtype=np.int64)
        ent_label = np.zeros(len(live), dtype=np.uint64)
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        near: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        moves, labels = self.moves.move, self.moves.label

        while len(b):
            token = offset + b
            scores = self._scores(cached, token, offset + ent_start, is_open, net)
            valid = self._valid(b, length, is_open, ent_label, space[token], next_sent_start[token])
            guess = _first_best_valid(scores, valid)
            stuck = guess < 0  # no valid action: spaCy forces the state to its end, entity unclosed

            move, label = np.where(stuck, OUT, moves[guess]), labels[guess]
            if self.second_opinion is not None:
                miss = self.second_opinion.near_misses(scores, valid, guess, move, label)
                if miss.any():
                    end = np.where(move[miss] == BEGIN, OPEN_END, b[miss] + 1)
                    near.append((doc_of[miss], b[miss], end, (move[miss] == OUT).astype(np.uint64)))
            opened, unit = move == BEGIN, move == UNIT
            closed = (move == LAST) & is_open
            if unit.any():
                found.append((doc_of[unit], b[unit], b[unit] + 1, label[unit]))
            if closed.any():
                found.append((doc_of[closed], ent_start[closed], b[closed] + 1, ent_label[closed]))
            is_open = (is_open & ~closed) | opened
            ent_start = np.where(opened, b, ent_start)
            ent_label = np.where(opened, label, ent_label)
            b = np.where(stuck, length, b + 1)
            alive = b < length
            if not alive.all():
                doc_of, offset, length, b = doc_of[alive], offset[alive], length[alive], b[alive]
                is_open, ent_start, ent_label = is_open[alive], ent_start[alive], ent_label[alive]
        ents = _group(found)
        if self.second_opinion is not None:
            unsure.update(_near_spans(_group(near), ents))
        return ents

    def _output_layer(self) -> tuple[np.ndarray, np.ndarray]:
        return self.upper.get_param("W"), self.upper.get_param("b")

    def _scores(
        self, cached: np.ndarray, token: np.ndarray, ent_first: np.ndarray, is_open: np.ndarray, net: tuple
    ) -> np.ndarray:
        """Each state's action scores: spaCy's feature sum, maxout and output layer, in spaCy's order."""
        bias, pieces, weights, out_bias = net
        # Feature rows (+1 for the padding row; -1 features take the padding): sum in spaCy's order.
        f0 = cached[token + 1, 0]
        f1 = cached[np.where(is_open, ent_first + 1, 0), 1]
        f2 = cached[np.where(is_open, token, 0), 2]
        unmaxed = f0 + f1
        unmaxed += f2
        unmaxed += bias
        hidden = unmaxed.reshape(len(token), -1, pieces).max(axis=2)
        scores = blis.py.gemm(hidden, weights, trans2=True, beta=0.0)
        scores += out_bias
        if len(self.unseen):
            scores[:, self.unseen] = scores.min()
        return scores

    def _valid(
        self,
        b: np.ndarray,
        length: np.ndarray,
        is_open: np.ndarray,
        ent_label: np.ndarray,
        space0: np.ndarray,
        next_starts_sentence: np.ndarray,
    ) -> np.ndarray:
        """(states, classes) validity, the rules of spaCy's Begin/In/Last/Unit/Out.is_valid without presets."""
        closed = ~is_open
        room = (length - b) >= 2  # B and I need a token after B(0)
        per_move = np.stack(
            [
                closed & room & ~next_starts_sentence & ~space0,  # BEGIN
                is_open & room & ~next_starts_sentence,  # IN
                is_open,  # LAST
                closed & ~space0,  # UNIT
                closed,  # OUT
            ],
            axis=1,
        )
        valid = per_move[:, self.moves.move]
        valid &= self.label_ok
        same_label = ent_label[:, None] == self.moves.label[None, :]
        valid &= same_label | ~self.matches_open
        return valid


UNSURE = "pii_unsure"  # doc.spans key of the second opinion's near misses
OPEN_END = -1  # a near miss on a B action: its end is where the entity the decoder opened ends
# A near miss's kind (its span's kb_id): the decoder took O, or tagged the words with another label.
NEAR_OUTSIDE, NEAR_RELABEL = "outside", "relabel"


@dataclass
class SecondOpinion:
    """Where the greedy decoder nearly tagged a `label` entity: it took O (outside), or began an entity
    of another label, and the `label` action of the same kind (U, or B) scored within `margin`.

    The small model's PERSON misses are mostly lone names ("Xavier is from Redfin")
    taken for an organisation or a place, or left out, by little. The entities
    themselves are unchanged; near misses are reported beside them
    (doc.spans[UNSURE]) for the PII rules to weigh.
    """

    label: int
    unit: int  # class index of U-label
    begin: int  # class index of B-label
    margin: float

    @classmethod
    def of(cls, decoder: BatchedNer, label: str, margin: float) -> SecondOpinion:
        label_id = decoder.ner.vocab.strings[label]
        mine = decoder.moves.label == label_id
        unit = int(np.flatnonzero(mine & (decoder.moves.move == UNIT))[0])
        begin = int(np.flatnonzero(mine & (decoder.moves.move == BEGIN))[0])
        return cls(label_id, unit, begin, margin)

    def near_misses(
        self, scores: np.ndarray, valid: np.ndarray, guess: np.ndarray, move: np.ndarray, label: np.ndarray
    ) -> np.ndarray:
        """Per state, whether its action was a near miss for the watched label."""
        rows = np.arange(len(guess))
        target = np.where(move == BEGIN, self.begin, self.unit)
        other = ((move == BEGIN) | (move == UNIT)) & (label != self.label)
        applicable = (guess >= 0) & ((move == OUT) | other) & valid[rows, target]
        return applicable & (scores[rows, np.maximum(guess, 0)] - scores[rows, target] < self.margin)


def _near_spans(
    near: dict[int, list[tuple[int, int, int]]], ents: dict[int, list[tuple[int, int, int]]]
) -> dict[int, list[tuple[int, int, int]]]:
    """Near misses as (start, end, outside) per doc; a B near miss spans the entity that began there."""
    out: dict[int, list[tuple[int, int, int]]] = {}
    for doc, misses in near.items():
        ends = {start: end for start, end, _ in ents.get(doc, [])}
        for start, end, outside in misses:
            end = ends.get(start, OPEN_END) if end == OPEN_END else end
            if end != OPEN_END:
                out.setdefault(doc, []).append((start, end, outside))
    return out


def _token_flags(docs: list[Doc], lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per token of the batch: is it a space token, and does the token after it (in its doc) start a
    sentence; None when a doc already has entity annotation (preset entities)."""
    total = int(lengths.sum())
    space = np.zeros(total, dtype=bool)
    next_start = np.zeros(total, dtype=bool)
    at = 0
    for doc, n in zip(docs, lengths, strict=True):
        if not n:
            continue
        flags = doc.to_array(["IS_SPACE", "SENT_START", "ENT_IOB"]).reshape(n, 3)
        if flags[:, 2].any():
            return None
        space[at : at + n] = flags[:, 0] == 1
        next_start[at : at + n - 1] = flags[1:, 1] == 1
        at += n
    return space, next_start


def _first_best_valid(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, the first index of the highest score among valid classes (spaCy's arg_max_if_valid); -1 if none."""
    masked = np.where(valid, scores, -np.inf)
    guess = masked.argmax(axis=1)
    rows = np.arange(len(guess))
    off = ~valid[rows, guess]
    if off.any():  # every valid score is -inf (or no class is valid): spaCy takes the first valid one
        any_valid = valid.any(axis=1)
        guess[off] = np.where(any_valid[off], valid[off].argmax(axis=1), -1)
    return guess


def _group(found: list[tuple[np.ndarray, ...]]) -> dict[int, list[tuple[int, int, int]]]:
    out: dict[int, list[tuple[int, int, int]]] = {}
    if not found:
        return out
    doc, start, end, label = (np.concatenate(parts) for parts in zip(*found, strict=True))
    for i in np.lexsort((start, doc)):
        out.setdefault(int(doc[i]), []).append((int(start[i]), int(end[i]), int(label[i])))
    return out


def verify(nlp: spacy.Language, decoder: BatchedNer, texts: Sequence[str] = PROBES) -> str | None:
    """The first probe text on which the batched decoder's entities differ from spaCy's, or None."""
    ours = decoder([nlp.make_doc(t) for t in texts])
    theirs = list(decoder.ner.pipe([nlp.make_doc(t) for t in texts], batch_size=len(texts)))
    for text, a, b in zip(texts, ours, theirs, strict=True):
        if _entities(a) != _entities(b):
            return text
    return None


def _entities(doc: Doc) -> list[tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]
