"""CUDA streams of their own for each part of the engine that captures or replays graphs.

Why this exists: PyTorch keeps one cuBLAS / cuBLASLt workspace per (thread's handle, stream),
and a CUDA graph bakes in the workspace of the stream it was captured on. ``torch.cuda.graph``
captures on one process-wide default stream unless told otherwise, so the T3 decode graphs
and the S3Gen graphs (all captured at start-up by the same thread) shared one workspace; two
of them replaying at once from the decode and vocoder threads scribbled over each other's
split-K scratch. In the H100 bench that hung the GPU (every thread blocked in its next CUDA
call), now and then or at once depending on the batch shapes. Each part now captures on and
replays from a stream nobody else uses.

Priorities: T3 decode steps are short chains of small kernels that every stream's next
token waits on; S3Gen renders are long and can wait a few milliseconds. The decoder's stream
has the high priority, so its kernels go first whenever an SM frees up during a render.
"""

from __future__ import annotations

import threading

import torch

HIGH_PRIORITY = -1
LOW_PRIORITY = 0

_claimed: set[int] = set()
_lock = threading.Lock()


def private_stream(device: torch.device | str, *, priority: int = LOW_PRIORITY) -> torch.cuda.Stream:
    """A stream from PyTorch's pool that no other caller of this function has been given."""
    with _lock:
        for _ in range(128):  # the pool holds 32 streams per priority, handed out round-robin
            stream = torch.cuda.Stream(device=device, priority=priority)
            if stream.cuda_stream not in _claimed:
                _claimed.add(stream.cuda_stream)
                return stream
    raise RuntimeError("no unclaimed CUDA stream left in the pool")
