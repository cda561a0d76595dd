"""wordnet_retrieval_set's larger distillation corpus: lemmas and other parts of speech,
never the evaluation nouns or definitions."""

from __future__ import annotations

import pytest
from support import wordnet_set_or_skip

from prunekit.eval import wordnet_retrieval_set


def test_defaults_unchanged_and_lemmas_added_without_eval_words():
    base = wordnet_set_or_skip(n=300, n_extra=200)
    more = wordnet_set_or_skip(n=300, n_extra=200, extra_lemmas=True)
    assert more.nouns == base.nouns and more.definitions == base.definitions
    # same synsets: the sentences are the same minus held-out strings, plus short lemmas
    held_out = {t.lower() for t in more.nouns + more.definitions}
    assert {t for t in base.extra_text if t.lower() not in held_out} <= set(more.extra_text)
    lemmas = set(more.extra_text) - set(base.extra_text)
    assert 100 < len(lemmas) <= 200
    assert not {t.lower() for t in more.extra_text} & held_out


def test_other_parts_of_speech_are_drawn_and_held_out_words_excluded():
    data = wordnet_set_or_skip(n=2000, n_extra=3000, extra_lemmas=True,
                               extra_pos=("noun", "verb", "adj", "adv"))
    held_out = {t.lower() for t in data.nouns + data.definitions}
    assert len(data.extra_text) > 6000  # definitions + lemmas (+ examples)
    assert not {t.lower() for t in data.extra_text} & held_out
    others = wordnet_set_or_skip(n=50, n_extra=40000, extra_lemmas=True, extra_pos=("verb", "adj"))
    texts = set(others.extra_text)
    assert {"breathe", "able", "abaxial"} <= texts  # first verb / adjective synsets
    assert not any(t.endswith(("(a)", "(p)", "(ip)")) for t in texts)


def test_bad_extra_options_name_the_argument():
    with pytest.raises(ValueError, match="extra_pos"):
        wordnet_retrieval_set(n=5, extra_pos=("noun", "pronoun"))
    with pytest.raises(ValueError, match="extra_pos"):
        wordnet_retrieval_set(n=5, extra_pos=())
    with pytest.raises(ValueError, match="n_extra"):
        wordnet_retrieval_set(n=5, n_extra=-1)
