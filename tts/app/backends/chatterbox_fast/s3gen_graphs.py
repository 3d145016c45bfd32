"""CUDA graphs for S3Gen's flow-matching estimator, the vocoder's hot loop.

Upstream runs the estimator (a 1-D U-Net with 56 transformer blocks) 10 times per render,
each a few thousand small kernels launched from Python, plus one host sync per call
(``add_optional_chunk_mask`` checks for empty rows with ``.item()``). Rendering is therefore
launch-bound: a 1-window render and an 8-window render take nearly the same time. Here each
(rows, frames) bucket is captured once and replayed; inputs are zero-padded to the bucket
with a zero mask, which the estimator already honours for variable-length batches.
"""

from __future__ import annotations

import logging
import threading

import torch
from torch import nn

from tts.app.backends.chatterbox_fast.streams import private_stream

log = logging.getLogger(__name__)

FRAME_BUCKET = 64


def _sync_free_chunk_mask(original):
    """``add_optional_chunk_mask`` without its host round trip (same result)."""

    def chunk_mask(
        xs,
        masks,
        use_dynamic_chunk,
        use_dynamic_left_chunk,
        decoding_chunk_size,
        static_chunk_size,
        num_decoding_left_chunks,
        enable_full_context=True,
    ):
        if use_dynamic_chunk or static_chunk_size > 0:
            return original(
                xs,
                masks,
                use_dynamic_chunk,
                use_dynamic_left_chunk,
                decoding_chunk_size,
                static_chunk_size,
                num_decoding_left_chunks,
                enable_full_context,
            )
        # Rows with no valid frame attend to everything instead of nothing (upstream does
        # this after a .item() check; the outputs of such rows are masked anyway).
        return masks | (masks.sum(dim=-1, keepdim=True) == 0)

    return chunk_mask


def patch_chunk_mask() -> None:
    """The estimator (decoder) and the flow encoder both call ``add_optional_chunk_mask``:
    give both modules the sync-free version (same result)."""
    from chatterbox.models.s3gen import decoder as s3_decoder
    from chatterbox.models.s3gen.transformer import upsample_encoder

    for module in (s3_decoder, upsample_encoder):
        if not getattr(module.add_optional_chunk_mask, "_sync_free", False):
            fn = _sync_free_chunk_mask(module.add_optional_chunk_mask)
            fn._sync_free = True
            module.add_optional_chunk_mask = fn


def _pow2(n: int) -> int:
    b = 2
    while b < n:
        b *= 2
    return b


class GraphedEstimator(nn.Module):
    """Drop-in for ``CausalConditionalCFM.estimator``: same call, graph replay on CUDA."""

    def __init__(self, inner: nn.Module, *, max_rows: int = 64, stream: torch.cuda.Stream | None = None) -> None:
        super().__init__()
        self.stream = stream  # capture stream of its own (streams.py); one is drawn at first capture
        self.inner = inner
        self.max_rows = max_rows
        self._graphs: dict[tuple[int, int], tuple] = {}
        self._pool = None
        self._lock = threading.Lock()
        self.captured = 0
        self.failed: set[tuple[int, int]] = set()

    @property
    def dtype(self):
        return self.inner.dtype

    def forward(self, x, mask, mu, t, spks=None, cond=None, r=None):
        rows, _, frames = x.shape
        if (
            r is not None
            or not x.is_cuda
            or rows > self.max_rows
            or spks is None
            or cond is None
            or torch.cuda.is_current_stream_capturing()  # inside a whole-render capture
        ):
            return self.inner(x, mask, mu, t, spks, cond, r)
        key = (_pow2(rows), -(-frames // FRAME_BUCKET) * FRAME_BUCKET)
        with self._lock:
            entry = self._graphs.get(key)
            if entry is None and key not in self.failed:
                entry = self._capture(key, x.dtype, x.device)
        if entry is None:
            return self.inner(x, mask, mu, t, spks, cond, r)
        graph, (xs, ms, mus, ts, ss, cs), out = entry
        for buf in (xs, ms, mus, cs):
            buf.zero_()
        xs[:rows, :, :frames] = x
        ms[:rows, :, :frames] = mask
        mus[:rows, :, :frames] = mu
        cs[:rows, :, :frames] = cond
        ts.zero_()
        ts[:rows] = t
        ss.zero_()
        ss[:rows] = spks
        graph.replay()
        return out[:rows, :, :frames].clone()

    def _capture(self, key: tuple[int, int], dtype, device):
        rows, frames = key
        c = self.inner.out_channels
        xs = torch.zeros(rows, c, frames, dtype=dtype, device=device)
        ms = torch.zeros(rows, 1, frames, dtype=dtype, device=device)
        ms[:, :, :1] = 1
        mus = torch.zeros_like(xs)
        cs = torch.zeros_like(xs)
        ts = torch.zeros(rows, dtype=dtype, device=device)
        ss = torch.zeros(rows, c, dtype=dtype, device=device)
        try:
            if self.stream is None:
                self.stream = private_stream(device)
            side = self.stream
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.inner(xs, ms, mus, ts, ss, cs, None)
            torch.cuda.current_stream(device).wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool, stream=side, capture_error_mode="thread_local"):
                out = self.inner(xs, ms, mus, ts, ss, cs, None)
        except Exception:
            log.exception("could not capture the S3Gen estimator for %s; running it eagerly", key)
            self.failed.add(key)
            return None
        entry = (graph, (xs, ms, mus, ts, ss, cs), out)
        self._graphs[key] = entry
        self.captured += 1
        return entry


def install(s3gen, *, max_rows: int = 64, stream: torch.cuda.Stream | None = None) -> GraphedEstimator:
    """Wrap the estimator of a loaded S3Gen in place (idempotent)."""
    patch_chunk_mask()
    cfm = s3gen.flow.decoder
    if isinstance(cfm.estimator, GraphedEstimator):
        return cfm.estimator
    cfm.estimator = GraphedEstimator(cfm.estimator, max_rows=max_rows, stream=stream)
    return cfm.estimator
