"""One S3Gen render (speech tokens -> 24 kHz waveform) as a single CUDA graph per bucket.

Upstream splits a render into ``flow_inference`` (token embedding, conformer encoder, 10
flow-matching steps with classifier-free guidance) and ``hift_inference`` (f0 predictor, the
neural source filter, HiFi-GAN, inverse STFT). Both are thousands of small kernels launched
from Python, with host round trips on the way (an out-of-vocabulary ``.any()``, the chunk-mask
``.item()``, ``torch.istft``'s window-envelope check). With only the estimator graphed, every
vocoder batch still paid ~70 ms of launches and held the GIL while doing it, which is what
kept first audio slow under load and small batches expensive.

``S3GenRenderer.forward`` is the same math as upstream's two calls with no host round trip,
so on CUDA the whole thing is captured once per (rows, token bucket, prompt length) and
replayed: one launch per vocoder batch. On the CPU (tests) it runs eagerly; the CPU test
checks it against upstream's ``flow_inference`` + ``hift_inference``.

Two levers trade exactness for vocoder throughput (issue 20), both off by default:
``n_timesteps`` (fewer flow-matching steps than the model's 10: the estimator is most of a
render) and ``autocast`` (the conformer encoder and HiFi-GAN's convolutions in bf16/fp16; the
f0 predictor, the harmonic source and both STFTs stay float32, so pitch and phase are not
rounded). The flow-matching estimator has its own dtype (``BatchedVocoder``'s
``estimator_dtype``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tts.app.backends.chatterbox_fast.s3gen_graphs import patch_chunk_mask
from tts.app.backends.chatterbox_fast.streams import private_stream

log = logging.getLogger(__name__)

SAMPLES_PER_TOKEN = 960  # 25 speech tokens/s -> 50 mel frames/s -> 24 kHz: 2 * 480 samples
TOKEN_BUCKET = 16  # window lengths round up to this many tokens (one graph per bucket)
AUTOCAST_DTYPES = ("off", "bfloat16", "float16")


@dataclass
class RenderVoice:
    """S3Gen's reference for one voice, on the device in the flow's dtype, ready to concat."""

    prompt_token: torch.Tensor  # [1, P] long
    prompt_feat: torch.Tensor  # [1, 2P, 80]
    spks: torch.Tensor  # [1, 80]: x-vector, normalised and projected (constant per voice)

    @property
    def prompt_len(self) -> int:
        return int(self.prompt_token.shape[1])


def _pad_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """True where a position is valid: [B, max_len]; no host round trip (max_len is known)."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def graph_safe_istft(magnitude: torch.Tensor, phase: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int):
    """``torch.istft(center=True)`` for HiFT's tiny STFT (n_fft 16, hop 4) by overlap-add.

    Same result as upstream's ``_istft``; torch.istft checks the window envelope with a host
    round trip, which a CUDA graph cannot contain. The envelope here is never near zero (Hann,
    75 % overlap) except at the two trimmed edges.
    """
    magnitude = torch.clip(magnitude, max=1e2)
    spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window.view(1, -1, 1)  # [B, n_fft, T]
    n_frames = frames.shape[-1]
    out_len = n_fft + hop * (n_frames - 1)
    y = F.fold(frames, output_size=(1, out_len), kernel_size=(1, n_fft), stride=(1, hop)).view(frames.shape[0], -1)
    wsq = (window * window).view(1, -1, 1).expand(1, n_fft, n_frames)
    env = F.fold(wsq, output_size=(1, out_len), kernel_size=(1, n_fft), stride=(1, hop)).view(1, -1)
    half = n_fft // 2
    return y[:, half : out_len - half] / env[:, half : out_len - half]


class S3GenRenderer:
    """Renders token windows of one voice as one padded batch; graph replay on CUDA."""

    def __init__(
        self,
        s3gen,
        *,
        max_rows: int = 16,
        n_timesteps: int | None = None,
        cuda_graphs: bool = True,
        token_bucket: int = TOKEN_BUCKET,
        stream: torch.cuda.Stream | None = None,
        autocast: str = "off",
    ) -> None:
        """``stream``: where graphs are captured (one no other graph-capturing part uses,
        see streams.py); renders replay on the caller's current stream. ``autocast``: off,
        bfloat16 or float16 for the encoder and HiFi-GAN's convolutions (module docstring)."""
        if autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"TTS_CHATTERBOX_FAST_S3GEN_AUTOCAST must be one of {AUTOCAST_DTYPES}, not {autocast!r}")
        if n_timesteps is not None and n_timesteps < 1:
            raise ValueError(
                f"TTS_CHATTERBOX_FAST_S3GEN_STEPS must be at least 1 (0: the model's own), not {n_timesteps}"
            )
        self.s3gen = s3gen
        self.flow = s3gen.flow
        self.hift = s3gen.mel2wav
        self.max_rows = max_rows
        # Turbo's S3Gen is distilled (meanflow): 2 plain Euler steps, no CFG row.
        self.meanflow = bool(getattr(s3gen, "meanflow", False))
        self.n_timesteps = n_timesteps or (2 if self.meanflow else 10)
        self.token_bucket = token_bucket
        self.device = next(s3gen.parameters()).device
        self.dtype = next(self.flow.parameters()).dtype
        self.use_graphs = cuda_graphs and self.device.type == "cuda"
        self.autocast = None if autocast == "off" else getattr(torch, autocast)
        self.stream = stream if stream is not None or not self.use_graphs else private_stream(self.device)
        self._voices: dict[int, tuple[dict, RenderVoice]] = {}
        self._graphs: dict[tuple[int, int, int], tuple] = {}
        self._voice_bufs: dict[int, RenderVoice] = {}  # static voice inputs, one set per prompt length
        self._loaded: dict[int, RenderVoice] = {}  # the voice whose values those inputs hold now
        self._failed: set[tuple[int, int, int]] = set()
        # Serving (the vocoder has started): a bucket not captured at start-up, e.g. a cloned
        # voice whose reference prompt has another length, renders eagerly and is captured
        # later, when the vocoder is idle (capture_deferred), never in front of waiting windows.
        self.serving = False
        self._deferred: list[tuple[int, int, int]] = []
        self._pool = None
        self._lock = threading.Lock()
        self.captured = 0
        self._no_cache = torch.zeros(1, 1, 0, device=self.device, dtype=self.dtype)
        patch_chunk_mask()
        patch_istft(self.hift)
        patch_stft_float32(self.hift)

    # ---- voices ----

    @torch.inference_mode()
    def voice(self, ref_dict: dict) -> RenderVoice:
        """The prepared reference of ``ref_dict`` (cached per dict object)."""
        hit = self._voices.get(id(ref_dict))
        if hit is not None and hit[0] is ref_dict:
            return hit[1]
        emb = torch.atleast_2d(ref_dict["embedding"]).to(device=self.device, dtype=self.dtype)
        spks = self.flow.spk_embed_affine_layer(F.normalize(emb, dim=1))
        prompt_token = ref_dict["prompt_token"].to(device=self.device, dtype=torch.long)
        prompt_token = prompt_token.reshape(1, -1)
        prompt_feat = ref_dict["prompt_feat"].to(device=self.device, dtype=self.dtype)
        prompt_feat = prompt_feat[:, : 2 * prompt_token.shape[1]]
        v = RenderVoice(prompt_token.contiguous(), prompt_feat.contiguous(), spks.contiguous())
        self._voices[id(ref_dict)] = (ref_dict, v)  # the dict is kept alive: its id stays unique
        return v

    def forget(self, ref_dict: dict) -> None:
        self._voices.pop(id(ref_dict), None)

    # ---- the math (eager; captured as is on CUDA) ----

    def forward(
        self,
        tokens: torch.Tensor,
        token_lens: torch.Tensor,
        prompt_token: torch.Tensor,
        prompt_feat: torch.Tensor,
        spks: torch.Tensor,
    ) -> torch.Tensor:
        """tokens [B, T] long (zero-padded), token_lens [B] -> waveforms [B, T * 960] (float32).

        Same steps as upstream ``S3Token2Wav.flow_inference(finalize=True)`` followed by
        ``hift_inference``; mel frames past a row's length are zeroed before HiFi-GAN, so a
        short window batched with a long one ends as it would alone.
        """
        return self._vocode(self.mels(tokens, token_lens, prompt_token, prompt_feat, spks))

    def _half(self):  # noqa: ANN202 - a context manager
        """The ``autocast`` region (encoder, HiFi-GAN's convolutions), or nothing.
        No weight cache: a CUDA graph must not capture casts it would skip on replay."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast, cache_enabled=False)

    def mels(
        self,
        tokens: torch.Tensor,
        token_lens: torch.Tensor,
        prompt_token: torch.Tensor,
        prompt_feat: torch.Tensor,
        spks: torch.Tensor,
        n_timesteps: int | None = None,
    ) -> torch.Tensor:
        """The flow half of ``forward``: mel frames [B, 80, 2T] of the window (prompt dropped,
        frames past a row's length zeroed). ``n_timesteps`` overrides the renderer's (the
        bench's quality proxy compares step counts on the same tokens and noise)."""
        flow = self.flow
        batch, n_tok = tokens.shape
        n_prompt = prompt_token.shape[1]
        tok = torch.cat([prompt_token.expand(batch, -1), tokens.clamp(0, flow.vocab_size - 1)], dim=1)
        tok_len = token_lens + n_prompt
        valid = _pad_mask(tok_len, n_prompt + n_tok).unsqueeze(-1).to(self.dtype)
        x = flow.input_embedding(tok) * valid
        with self._half():
            h, h_masks = flow.encoder(x, tok_len)
            h = flow.encoder_proj(h)
        h = h.to(self.dtype)  # the flow-matching solver draws its noise in the flow's dtype
        h_lengths = h_masks.sum(dim=-1).squeeze(dim=-1)
        mel1 = prompt_feat.shape[1]
        frames = h.shape[1]
        conds = torch.zeros(batch, frames, flow.output_size, device=h.device, dtype=h.dtype)
        conds[:, :mel1] = prompt_feat
        mask = _pad_mask(h_lengths, frames).unsqueeze(1).to(h.dtype)
        mu = h.transpose(1, 2).contiguous()
        steps = n_timesteps or self.n_timesteps
        if self.meanflow:
            feat = self._meanflow(mu, mask, spks.expand(batch, -1), conds.transpose(1, 2), mel1, steps)
        else:
            feat, _ = flow.decoder(
                mu=mu, mask=mask, spks=spks.expand(batch, -1), cond=conds.transpose(1, 2), n_timesteps=steps
            )
        mels = feat[:, :, mel1:]
        mels = mels * _pad_mask(2 * token_lens, mels.shape[2]).unsqueeze(1).to(mels.dtype)
        return mels.to(self.dtype)

    def _meanflow(self, mu, mask, spks, cond, mel1: int, steps: int) -> torch.Tensor:
        """Upstream ``flow_inference`` + ``CausalConditionalCFM.basic_euler`` for a meanflow
        S3Gen (same random draws in the same order), without its per-call print and progress bar."""
        cfm = self.flow.decoder
        # Upstream draws (1, 80, frames) for its one row; each row of a batch gets its own.
        noise = torch.randn(mu.shape[0], mu.shape[1], mu.shape[2] - mel1, dtype=mu.dtype, device=mu.device)
        x = torch.randn_like(mu)
        x[..., mel1:] = noise
        in_dtype = x.dtype
        dtype = cfm.estimator.dtype
        x, mu, mask, spks, cond = (v.to(dtype) for v in (x, mu, mask, spks, cond))
        t_span = torch.linspace(0, 1, steps + 1, device=mu.device, dtype=dtype)
        for t, r in zip(t_span[:-1], t_span[1:], strict=True):
            t, r = t[None], r[None]
            dxdt = cfm.estimator.forward(x, mask=mask, mu=mu, t=t, spks=spks, cond=cond, r=r)
            x = x + (r - t) * dxdt
        return x.to(in_dtype)

    def _vocode(self, mels: torch.Tensor) -> torch.Tensor:
        """Upstream ``HiFTGenerator.inference`` (no cache); its ``_istft`` is the graph-safe one.
        With ``autocast``, the f0 predictor and the harmonic source run float32 first (as
        upstream's ``inference`` orders them), then ``decode`` in half precision."""
        if self.autocast is None:
            wav, _ = self.hift.inference(speech_feat=mels, cache_source=self._no_cache)
            return wav.float()
        hift = self.hift
        f0 = hift.f0_predictor(mels)
        s = hift.f0_upsamp(f0[:, None]).transpose(1, 2)
        s, _, _ = hift.m_source(s)
        with self._half():
            wav = hift.decode(x=mels, s=s.transpose(1, 2))
        return wav.float()

    # ---- batches ----

    def bucket(self, rows: int, tokens: int, prompt_len: int) -> tuple[int, int, int]:
        r = 1
        while r < rows:
            r *= 2
        return (r, -(-tokens // self.token_bucket) * self.token_bucket, prompt_len)

    @torch.inference_mode()
    def render(self, voice: RenderVoice, windows: list[list[int]]) -> torch.Tensor:
        """Waveforms [len(windows), >= longest * 960] on the device (rows past a window's
        length are silence or padding; the caller trims)."""
        lens = [len(w) for w in windows]
        key = self.bucket(len(windows), max(lens), voice.prompt_len)
        tokens = torch.zeros(len(windows), key[1], dtype=torch.long)
        for i, w in enumerate(windows):
            tokens[i, : len(w)] = torch.tensor(w, dtype=torch.long)
        token_lens = torch.tensor(lens, dtype=torch.long)
        if self.use_graphs and key[0] <= self.max_rows:
            with self._lock:
                entry = self._graphs.get(key)
                if entry is None and key not in self._failed:
                    if not self.serving:
                        entry = self._capture(key)
                    elif key not in self._deferred:
                        self._deferred.append(key)
                if entry is not None:
                    return self._replay(entry, voice, tokens, token_lens)
        # CPU, a batch past the graphs' rows, a bucket that could not be captured, or one whose
        # capture waits for the vocoder to be idle.
        return self.forward(
            tokens.to(self.device), token_lens.to(self.device), voice.prompt_token, voice.prompt_feat, voice.spks
        )

    @property
    def deferred(self) -> int:
        """Buckets met while serving that wait to be captured."""
        return len(self._deferred)

    @torch.inference_mode()
    def capture_deferred(self) -> bool:
        """Capture the oldest bucket met while serving (the vocoder calls this when idle)."""
        with self._lock:
            if not self._deferred:
                return False
            key = self._deferred.pop(0)
            if key not in self._graphs and key not in self._failed:
                self._capture(key)
            return True

    def _replay(self, entry: tuple, voice: RenderVoice, tokens: torch.Tensor, token_lens: torch.Tensor):
        graph, (tok_buf, len_buf), vbuf, out = entry
        n = tokens.shape[0]
        tok_buf.zero_()
        tok_buf[:n].copy_(tokens, non_blocking=True)
        len_buf.zero_()
        len_buf[:n].copy_(token_lens, non_blocking=True)
        if self._loaded.get(voice.prompt_len) is not voice:  # the static inputs hold another voice
            self._loaded[voice.prompt_len] = voice
            vbuf.prompt_token.copy_(voice.prompt_token)
            vbuf.prompt_feat.copy_(voice.prompt_feat)
            vbuf.spks.copy_(voice.spks)
        graph.replay()
        # Graphs share one memory pool: copy out before the next replay reuses it.
        return out[:n].clone()

    def _static_voice(self, prompt_len: int) -> RenderVoice:
        v = self._voice_bufs.get(prompt_len)
        if v is None:
            d = self.device
            v = RenderVoice(
                torch.zeros(1, prompt_len, dtype=torch.long, device=d),
                torch.zeros(1, 2 * prompt_len, self.flow.output_size, dtype=self.dtype, device=d),
                torch.zeros(1, self.flow.output_size, dtype=self.dtype, device=d),
            )
            self._voice_bufs[prompt_len] = v
        return v

    def _capture(self, key: tuple[int, int, int]):
        rows, n_tok, prompt_len = key
        d = self.device
        tok_buf = torch.zeros(rows, n_tok, dtype=torch.long, device=d)
        len_buf = torch.full((rows,), n_tok, dtype=torch.long, device=d)
        vbuf = self._static_voice(prompt_len)
        args = (tok_buf, len_buf, vbuf.prompt_token, vbuf.prompt_feat, vbuf.spks)
        try:
            side = self.stream
            side.wait_stream(torch.cuda.current_stream(d))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.forward(*args)
            torch.cuda.current_stream(d).wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool, stream=self.stream, capture_error_mode="thread_local"):
                out = self.forward(*args)
        except Exception:
            log.exception("could not capture the S3Gen render for %s; rendering it eagerly", key)
            self._failed.add(key)
            return None
        len_buf.zero_()
        entry = (graph, (tok_buf, len_buf), vbuf, out)
        self._graphs[key] = entry
        self.captured += 1
        return entry


def patch_istft(hift) -> None:
    """Give one HiFTGenerator the graph-safe inverse STFT (same result as ``torch.istft``)."""
    if getattr(hift, "_graph_safe_istft", False):
        return
    window = hift.stft_window.to(device=next(hift.parameters()).device, dtype=torch.float32)
    n_fft, hop = hift.istft_params["n_fft"], hift.istft_params["hop_len"]

    def _istft(magnitude, phase):
        return graph_safe_istft(magnitude.float(), phase.float(), window, n_fft, hop)

    hift._istft = _istft
    hift._graph_safe_istft = True


def patch_stft_float32(hift) -> None:
    """HiFT's forward STFT of the harmonic source always in float32, also inside an
    ``autocast`` region (the source carries the phase; a half-precision FFT would round it)."""
    if getattr(hift, "_stft_float32", False):
        return
    inner = hift._stft
    device_type = next(hift.parameters()).device.type

    def _stft(x):
        with torch.autocast(device_type, enabled=False):
            return inner(x.float())

    hift._stft = _stft
    hift._stft_float32 = True


def to_numpy(wavs: torch.Tensor, lens: list[int]) -> list[np.ndarray]:
    out = wavs.float().cpu()
    return [out[i, : n * SAMPLES_PER_TOKEN].numpy().copy() for i, n in enumerate(lens)]
