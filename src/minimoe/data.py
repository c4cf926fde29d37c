"""Data: the built-in bilingual "grammar tutor" corpus, a character vocabulary, and batches.

The corpus is generated, not downloaded: a fixed-seed generator writes short tutor lessons in
English and Spanish on five topics (verb conjugation, articles and gender, questions, numbers
and dates, feedback on a learner's sentence). The corpus is the same on every machine and every
run; the training seed only changes which windows are drawn.

`--data FILE` trains on any UTF-8 text instead; it is checked up front (missing, empty,
binary, not UTF-8, shorter than two windows) with a message that says what to do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

CORPUS_SEED = 1234  # fixed: the corpus must not change with the training seed
CORPUS_LESSONS = 1700  # ~200k characters
VAL_FRACTION = 0.1
MAX_DATA_BYTES = 200 * 1024 * 1024

TOPICS = ("verbs", "articles", "questions", "numbers", "feedback")
LANGS = ("en", "es")


class DataError(ValueError):
    """Training text that cannot be used; the message says why and what to do."""


# ---------------------------------------------------------------- the grammar-tutor corpus

_EN_SUBJ = [("I", 0), ("you", 1), ("she", 2), ("he", 2), ("we", 3), ("they", 4)]
_ES_SUBJ = [("yo", 0), ("tú", 1), ("ella", 2), ("él", 2), ("nosotros", 3), ("ellos", 4)]
_EN_VERBS = ["speak", "learn", "read", "write", "walk", "cook", "play", "open", "study", "work"]
_ES_VERBS = [("habl", "ar"), ("aprend", "er"), ("le", "er"), ("escrib", "ir"), ("camin", "ar"),
             ("cocin", "ar"), ("mir", "ar"), ("abr", "ir"), ("estudi", "ar"), ("trabaj", "ar")]
_ES_END = {"ar": ["o", "as", "a", "amos", "an"], "er": ["o", "es", "e", "emos", "en"],
           "ir": ["o", "es", "e", "imos", "en"]}
_NOUNS = [("book", "libro", "m"), ("table", "mesa", "f"), ("house", "casa", "f"), ("dog", "perro", "m"),
          ("window", "ventana", "f"), ("car", "coche", "m"), ("letter", "carta", "f"),
          ("garden", "jardín", "m"), ("city", "ciudad", "f"), ("teacher", "profesor", "m")]
_ADJ = [("red", "rojo"), ("small", "pequeño"), ("old", "viejo"), ("new", "nuevo"), ("white", "blanco")]
_PLACES = [("library", "biblioteca"), ("station", "estación"), ("market", "mercado"), ("school", "escuela")]
_EN_NUM = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
           "nineteen", "twenty"]
_ES_NUM = ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
           "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho",
           "diecinueve", "veinte"]
_EN_MONTHS = ["January", "March", "May", "July", "September", "November"]
_ES_MONTHS = ["enero", "marzo", "mayo", "julio", "septiembre", "noviembre"]


def _en_third(verb: str) -> str:
    return verb[:-1] + "ies" if verb.endswith("y") and verb[-2] not in "aeiou" else verb + "s"


def _es_adj(adj: str, gender: str, plural: bool) -> str:
    base = adj[:-1] + ("a" if gender == "f" else "o") if adj.endswith("o") else adj
    return base + ("s" if plural else "")


def _es_plural(noun: str) -> str:
    if noun.endswith(("a", "e", "o")):
        return noun + "s"
    return noun.replace("í", "i").replace("ó", "o") + "es"


def _lesson(topic: str, lang: str, r: random.Random) -> str:
    if topic == "verbs":
        i = r.randrange(len(_EN_VERBS))
        if lang == "en":
            lines = [f"Verb: to {_EN_VERBS[i]}. Present tense."]
            for subj, _ in _EN_SUBJ:
                v = _en_third(_EN_VERBS[i]) if subj in ("she", "he") else _EN_VERBS[i]
                lines.append(f"{subj} {v}.")
            lines.append("Remember: add -s after he and she.")
        else:
            stem, end = _ES_VERBS[i]
            lines = [f"Verbo: {stem}{end}. Presente."]
            for subj, p in _ES_SUBJ:
                lines.append(f"{subj} {stem}{_ES_END[end][p]}.")
            lines.append(f"Recuerda: los verbos en -{end} cambian la terminación.")
    elif topic == "articles":
        en, es, g = r.choice(_NOUNS)
        adj_en, adj_es = r.choice(_ADJ)
        if lang == "en":
            lines = [f"Articles: a {en}, the {en}, the {en}s.",
                     f"The {adj_en} {en} is here. The {adj_en} {en}s are here.",
                     "English nouns have no gender."]
        else:
            art, arts = ("la", "las") if g == "f" else ("el", "los")
            lines = [f"Artículos: {art} {es}, {arts} {_es_plural(es)}.",
                     f"{art.capitalize()} {es} {_es_adj(adj_es, g, False)}. "
                     f"{arts.capitalize()} {_es_plural(es)} {_es_adj(adj_es, g, True)}.",
                     f"{es.capitalize()} es {'femenino' if g == 'f' else 'masculino'}."]
    elif topic == "questions":
        en, es = r.choice(_PLACES)
        v = r.randrange(len(_EN_VERBS))
        if lang == "en":
            lines = [f"Question: Where is the {en}?", f"Answer: The {en} is near the park.",
                     f"Question: Do you {_EN_VERBS[v]} every day?", "Answer: Yes, I do."]
        else:
            stem, end = _ES_VERBS[v]
            lines = [f"Pregunta: ¿Dónde está la {es}?", f"Respuesta: La {es} está cerca del parque.",
                     f"Pregunta: ¿{stem.capitalize()}{_ES_END[end][1]} todos los días?",
                     f"Respuesta: Sí, {stem}{_ES_END[end][0]}."]
    elif topic == "numbers":
        a, b = r.randrange(1, 11), r.randrange(0, 11)
        day, m, year = r.randrange(1, 29), r.randrange(6), r.randrange(1990, 2030)
        if lang == "en":
            lines = [f"{a} + {b} = {a + b}: {_EN_NUM[a]} plus {_EN_NUM[b]} is {_EN_NUM[a + b]}.",
                     f"Date: {_EN_MONTHS[m]} {day}, {year}.",
                     f"I have {_EN_NUM[a]} book{'s' * (a != 1)} and {_EN_NUM[b]} pen{'s' * (b != 1)}."]
        else:
            lines = [f"{a} + {b} = {a + b}: {_ES_NUM[a]} más {_ES_NUM[b]} son {_ES_NUM[a + b]}.",
                     f"Fecha: {day} de {_ES_MONTHS[m]} de {year}.",
                     f"Tengo {'un libro' if a == 1 else _ES_NUM[a] + ' libros'} y "
                     f"{'un bolígrafo' if b == 1 else _ES_NUM[b] + ' bolígrafos'}."]
    else:  # feedback on a learner's sentence
        i = r.randrange(len(_EN_VERBS))
        if lang == "en":
            subj = r.choice(["she", "he"])
            lines = [f"Learner: {subj} {_EN_VERBS[i]} every day.",
                     f"Tutor: Almost! Say: {subj} {_en_third(_EN_VERBS[i])} every day.",
                     "Tutor: The verb agrees with the subject."]
        else:
            stem, end = _ES_VERBS[i]
            lines = [f"Alumno: nosotros {stem}{_ES_END[end][0]} mucho.",
                     f"Tutor: ¡Casi! Di: nosotros {stem}{_ES_END[end][3]} mucho.",
                     "Tutor: El verbo concuerda con el sujeto."]
    return " ".join(lines) + "\n"


def grammar_tutor_corpus(lessons: int = CORPUS_LESSONS) -> str:
    """The built-in corpus: `lessons` lessons, each on a random topic in a random language."""
    r = random.Random(CORPUS_SEED)
    parts = []
    for _ in range(lessons):
        topic, lang = r.choice(TOPICS), r.choice(LANGS)
        parts.append(_lesson(topic, lang, r))
    return "".join(parts)


# ---------------------------------------------------------------- text from a file

def read_text_file(path: str, min_chars: int) -> str:
    """Read --data FILE, refusing what cannot train a model, with the fix in the message."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"--data {path}: no such file; give the path to a UTF-8 text file")
    if not p.is_file():
        raise DataError(f"--data {path}: not a regular file; give the path to a UTF-8 text file")
    size = p.stat().st_size
    if size == 0:
        raise DataError(f"--data {path}: the file is empty; it needs at least {min_chars} characters of text")
    if size > MAX_DATA_BYTES:
        raise DataError(f"--data {path}: {size} bytes is more than this toy trains on "
                        f"({MAX_DATA_BYTES // 2**20} MiB); cut it down")
    raw = p.read_bytes()
    if b"\x00" in raw[:65536]:
        raise DataError(f"--data {path}: looks binary (it has NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"--data {path}: not UTF-8 (bad byte at offset {e.start}); "
                        "convert it, e.g. `iconv -f latin1 -t utf-8`") from None
    if len(text) < min_chars:
        raise DataError(f"--data {path}: {len(text)} characters is too short; it needs at least "
                        f"{min_chars} (two context windows plus a held-out part); lower --context or add text")
    return text


# ---------------------------------------------------------------- vocabulary and batches

@dataclass
class Dataset:
    """Encoded train/val text."""

    vocab: str  # the characters, in id order
    train_ids: torch.Tensor  # (N_train,) int64
    val_ids: torch.Tensor  # (N_val,) int64

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        missing = sorted(set(text) - set(index))
        if missing:
            raise DataError(f"characters not in the vocabulary: {''.join(missing)!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


def load_dataset(data_path: str = "", context: int = 64, vocab: str | None = None) -> Dataset:
    """The built-in corpus (data_path == "") or a text file, split 90/10 into train and val.

    vocab: reuse a checkpoint's vocabulary; text with characters outside it is refused.
    """
    if data_path:
        text = read_text_file(data_path, min_chars=int(2 * (context + 1) / VAL_FRACTION))
    else:
        text = grammar_tutor_corpus()
    vocab = vocab if vocab is not None else "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - set(index))
    if missing:
        raise DataError(f"the text has characters the checkpoint's vocabulary lacks: {''.join(missing[:20])!r}")
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(len(ids) * (1 - VAL_FRACTION))
    return Dataset(vocab, ids[:split], ids[split:])


class Batches:
    """Random training windows, drawn from a generator seeded by the training seed."""

    def __init__(self, ids: torch.Tensor, context: int, batch: int, seed: int):
        if len(ids) < context + 2:
            raise DataError(f"{len(ids)} training tokens cannot fill one window of --context {context}")
        self.ids, self.context, self.batch = ids, context, batch
        self.gen = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x_BS (inputs) and y_BS (next-token targets) of `batch` windows at random starts."""
        starts_B = torch.randint(0, len(self.ids) - self.context - 1, (self.batch,), generator=self.gen)
        offs_S = torch.arange(self.context)
        x_BS = self.ids[starts_B[:, None] + offs_S]
        y_BS = self.ids[starts_B[:, None] + offs_S + 1]
        return x_BS, y_BS


def eval_windows(ids: torch.Tensor, context: int, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic, non-overlapping held-out windows covering about n_tokens tokens."""
    n_win = max(1, min(n_tokens // context, (len(ids) - 1) // context))
    starts = torch.arange(n_win) * context
    offs_S = torch.arange(context)
    return ids[starts[:, None] + offs_S], ids[starts[:, None] + offs_S + 1]
