"""The built-in corpus is deterministic; --data files are checked with a clear message."""

import pytest

from minimoe.data import DataError, grammar_tutor_corpus, load_dataset


def test_corpus_is_deterministic_and_bilingual():
    a, b = grammar_tutor_corpus(), grammar_tutor_corpus()
    assert a == b and len(a) > 100_000
    assert "¿" in a and "Verb:" in a and "Verbo:" in a


def test_split_and_vocab(corpus):
    assert len(corpus.train_ids) > 8 * len(corpus.val_ids)
    assert corpus.decode(corpus.encode("¿Dónde?")) == "¿Dónde?"


@pytest.mark.parametrize("content,match", [
    (None, "no such file"),
    (b"", "empty"),
    (b"abc\x00\x01\x02" * 100, "binary"),
    (b"caf\xe9 " * 400, "not UTF-8"),
    (b"short text", "too short"),
])
def test_bad_data_files(tmp_path, content, match):
    p = tmp_path / "data.txt"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_dataset(str(p), context=64)


def test_a_text_file_trains(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text("the quick brown fox jumps over the lazy dog. " * 100, encoding="utf-8")
    ds = load_dataset(str(p), context=32)
    assert ds.vocab_size == len(set("the quick brown fox jumps over the lazy dog. "))
