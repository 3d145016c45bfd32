"""T3 speech-token decoding for many requests in one forward pass.

Chatterbox's T3 is a Llama backbone (Chatterbox) or a GPT-2 one (Chatterbox-Turbo) with its
own embeddings and heads; upstream drives it through Hugging Face with a fresh cache per
request, batch 2 (the CFG pair; 1 for Turbo, which has no CFG), and Python-level overhead per
layer per token. Here the same weights (the T3 module's own submodules, not copies) run over a
*slot* table:

- slot ``s`` owns ``R`` KV rows of a static cache ``[rows, kv_heads, max_len, head_dim]``
  per layer: ``R = 2`` for Chatterbox (row ``2s`` conditional, ``2s+1`` CFG unconditional),
  ``R = 1`` for Turbo. A request joins by writing its prompt into free rows and leaves by
  being forgotten: no reallocation;
- one decode step runs every slot of a bucket (1, 2, 4, ... slots) at its own position,
  with a length mask, so static shapes let the step be captured once per
  (bucket, kv-length) as a CUDA graph and replayed without Python per layer;
- a request's prompt starts with its voice's conditioning (34 positions for Chatterbox,
  up to 376 for Turbo), the same for every request of that voice: its keys and values are
  computed once (``compute_prefix``) and copied into a joining request's rows, so a prefill
  runs only the text and BOS positions, attending to them (causal attention makes this
  exact: no position depends on a later one).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tts.app.backends.chatterbox_fast.streams import HIGH_PRIORITY, private_stream


def _bucket(n: int, buckets: tuple[int, ...]) -> int:
    for b in buckets:
        if n <= b:
            return b
    raise ValueError(f"{n} exceeds the largest bucket {buckets[-1]}")


def slot_buckets(max_slots: int) -> tuple[int, ...]:
    """1, 2, 4, 8, then steps of 8: padding waste stays under ~20% at high load."""
    out, b = [], 1
    while b < min(8, max_slots):
        out.append(b)
        b *= 2
    b = 8
    while b < max_slots:
        out.append(b)
        b += 8
    out.append(max_slots)
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class DecoderShape:
    max_slots: int
    max_len: int  # prompt (conditioning + text + BOS) plus speech tokens, per request
    kv_len_buckets: tuple[int, ...]


def _rope_inv_freq(rotary) -> tuple[torch.Tensor, float]:
    """Recompute RoPE frequencies in fp32 (a bf16 cast of the module rounds its buffer)."""
    config = rotary.config
    try:
        if getattr(rotary, "rope_type", "default") == "default":
            inv_freq, scaling = rotary.compute_default_rope_parameters(config)
        else:
            from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

            inv_freq, scaling = ROPE_INIT_FUNCTIONS[rotary.rope_type](config)
        return inv_freq.float(), float(scaling)
    except Exception:  # an older/newer transformers API: the module's own (fp32) buffer
        return rotary.original_inv_freq.float().clone(), float(rotary.attention_scaling)


# Prefill graphs: requests joining at once (bucketed) x the positions a prompt adds after its
# voice's cached conditioning: the sentence's text tokens + BOS (+ BOS again for Chatterbox),
# bucketed; longer texts prefill eagerly.
PREFILL_JOINERS = (1, 2, 4, 8)
SUFFIX_BUCKETS = (16, 32, 48, 64, 96, 128, 192, 256, 384)


@dataclass
class PrefixKV:
    """A voice's conditioning in cache form: the keys and values of its first ``length``
    positions in every layer, [layers, kv_heads, length, head_dim] (both CFG rows share it)."""

    k: torch.Tensor
    v: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.k.shape[2])

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()


def conditioning_len(hp) -> int:
    """Positions T3's conditioning takes: speaker, speech prompt (or its Perceiver summary), emotion."""
    prompt = 32 if hp.use_perceiver_resampler else hp.speech_cond_prompt_len
    return 1 + prompt + (1 if hp.emotion_adv else 0)


class T3BatchDecoder:
    """Owns the slot KV cache and runs prefill and decode steps over T3's weights."""

    def __init__(self, t3, shape: DecoderShape, *, dtype: torch.dtype, device: torch.device | str) -> None:
        self.t3 = t3
        self.device = torch.device(device)
        # Decode steps capture on and run from a high-priority stream of their own (streams.py).
        self.stream = private_stream(self.device, priority=HIGH_PRIORITY) if self.device.type == "cuda" else None
        self.dtype = dtype
        self.shape = shape
        self.slot_buckets = slot_buckets(shape.max_slots)
        # Turbo's GPT-2 backbone: learned absolute positions, no CFG (one row per slot).
        self.is_gpt = bool(getattr(t3, "is_gpt", False))
        self.rows_per_slot = 1 if self.is_gpt else 2
        cfg = t3.cfg
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.gqa = self.n_heads != self.n_kv
        self.layers = list(t3.tfmr.h if self.is_gpt else t3.tfmr.layers)
        self.vocab = t3.speech_head.out_features
        rows = self.rows_per_slot * shape.max_slots
        if self.is_gpt:
            if shape.max_len > t3.tfmr.wpe.num_embeddings:
                raise ValueError(f"max_len {shape.max_len} exceeds GPT-2's {t3.tfmr.wpe.num_embeddings} positions")
        else:
            inv_freq, scaling = _rope_inv_freq(t3.tfmr.rotary_emb)
            pos = torch.arange(shape.max_len, dtype=torch.float32)
            freqs = pos[:, None] * inv_freq[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            self.cos = (emb.cos() * scaling).to(device=self.device, dtype=dtype)
            self.sin = (emb.sin() * scaling).to(device=self.device, dtype=dtype)
        # One cache tensor for all layers (a prefix copy is one op); plus a scratch row past the
        # slots' where a voice's conditioning is computed. Decode buckets never reach it.
        self.scratch_row = rows
        kv = (len(self.layers), rows + 1, self.n_kv, shape.max_len, self.head_dim)
        self.k_all = torch.zeros(kv, dtype=dtype, device=self.device)
        self.v_all = torch.zeros(kv, dtype=dtype, device=self.device)
        self.k_cache = list(self.k_all.unbind(0))
        self.v_cache = list(self.v_all.unbind(0))
        # Static inputs of the decode step (graph replays read these addresses).
        self.tok = torch.zeros(rows, dtype=torch.long, device=self.device)
        self.speech_pos = torch.zeros(rows, dtype=torch.long, device=self.device)
        self.cache_pos = torch.zeros(rows, dtype=torch.long, device=self.device)
        self.row_ids = torch.arange(rows, device=self.device)
        self._scratch_ids = torch.tensor([self.scratch_row], device=self.device)
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._prefill_graphs: dict[tuple[int, int], tuple] = {}
        # A graphed prefill attends to max_cond + its suffix bucket: every voice's conditioning
        # fits (Turbo's speech prompt is at most 375 tokens; Chatterbox's Perceiver gives 32).
        self.max_cond = conditioning_len(t3.hp)
        self._suffix_lens = tuple(b for b in SUFFIX_BUCKETS if self.max_cond + b <= shape.max_len)
        self._pool = None

    # ---- transformer math (same ops as transformers' Llama / GPT-2, over T3's own submodules) ----

    def rows_of(self, slots: list[int]) -> list[int]:
        """Cache rows of ``slots``, each slot's rows adjacent (CFG pair: conditional first)."""
        r = self.rows_per_slot
        return [r * s + j for s in slots for j in range(r)]

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def _layers(
        self, h: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor, kv_len: int | None, gather: bool = False
    ) -> torch.Tensor:
        """Run all layers. ``pos``: (B, T) cache positions; ``rows``: (B,) cache rows.

        ``kv_len`` None: attend causally within ``h`` only (a fresh row); else attend to each
        row's cache positions ``<= pos`` below ``kv_len``: rows ``[0, B)`` (decode: a slot
        bucket) or, with ``gather``, the given ``rows`` (a prefill after a cached prefix).
        """
        mask = None
        if kv_len is not None:
            mask = (torch.arange(kv_len, device=h.device)[None, None, :] <= pos[:, :, None]).unsqueeze(1)
        attend = functools.partial(self._attend, pos=pos, rows=rows, kv_len=kv_len, mask=mask, gather=gather)
        if self.is_gpt:
            return self._gpt2_layers(h, pos, attend)
        return self._llama_layers(h, pos, attend)

    def _attend(self, i: int, q, k, v, pos, rows, kv_len: int | None, mask, gather: bool) -> torch.Tensor:
        """Write k/v at ``pos`` of ``rows``; attention output (B, T, heads * head_dim)."""
        B, _, T, _ = q.shape
        self.k_cache[i][rows[:, None], :, pos] = k.transpose(1, 2)
        self.v_cache[i][rows[:, None], :, pos] = v.transpose(1, 2)
        if kv_len is None:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.gqa)
        else:
            kk = self.k_cache[i][rows, :, :kv_len] if gather else self.k_cache[i][:B, :, :kv_len]
            vv = self.v_cache[i][rows, :, :kv_len] if gather else self.v_cache[i][:B, :, :kv_len]
            o = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, enable_gqa=self.gqa)
        return o.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)

    def _gpt2_layers(self, h, pos, attend) -> torch.Tensor:
        """transformers' GPT2Model in eval: learned positions added once, pre-LN blocks."""
        tfmr = self.t3.tfmr
        h = h + tfmr.wpe(pos)
        B, T, dim = h.shape
        for i, block in enumerate(self.layers):
            attn = block.attn
            q, k, v = attn.c_attn(block.ln_1(h)).split(dim, dim=2)
            q, k, v = (t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
            h = h + attn.c_proj(attend(i, q, k, v))
            h = h + block.mlp(block.ln_2(h))
        return tfmr.ln_f(h)

    def _llama_layers(self, h, pos, attend) -> torch.Tensor:
        B, T, _ = h.shape
        cos = self.cos[pos].unsqueeze(1)  # (B, 1, T, D)
        sin = self.sin[pos].unsqueeze(1)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
            q = q * cos + self._rotate_half(q) * sin
            k = k * cos + self._rotate_half(k) * sin
            h = h + attn.o_proj(attend(i, q, k, v))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.t3.tfmr.norm(h)

    # ---- prefill: new requests join ----

    @torch.inference_mode()
    def compute_prefix(self, cond: torch.Tensor) -> PrefixKV:
        """A voice's conditioning embeddings (1, Lc, dim) -> its keys and values (once per voice)."""
        lc = cond.shape[1]
        self._layers(cond.to(self.dtype), torch.arange(lc, device=self.device)[None], self._scratch_ids, kv_len=None)
        r = self.scratch_row
        return PrefixKV(self.k_all[:, r, :, :lc].clone(), self.v_all[:, r, :, :lc].clone())

    @torch.inference_mode()
    def prefill(self, prefixes: list[PrefixKV], suffixes: list[torch.Tensor], slots: list[int]) -> torch.Tensor:
        """Join requests: copy each one's voice conditioning into its slot's rows, then run the
        rest of its prompt, ``suffixes[i]`` (R, Ls_i, dim: text and BOS), attending to it.

        Suffixes are right-padded to one length: causal masking keeps padding out of the real
        positions, and padded cache entries lie past the request's position, masked until
        decode overwrites them. Returns the last real position's logits, (R*n, V) fp32.

        On CUDA, up to ``PREFILL_JOINERS[-1]`` requests at a time replay a captured graph of
        their (joiners, suffix length) bucket: an eager prefill is ~30 layers of launches that
        held the decode thread (and so every stream's next token) for 100-300 ms under load.
        """
        totals = [p.length + x.shape[1] for p, x in zip(prefixes, suffixes, strict=True)]
        if max(totals) >= self.shape.max_len:
            raise ValueError(f"prompt of {max(totals)} positions exceeds the decoder's max_len {self.shape.max_len}")
        self.load_prefixes(prefixes, slots)
        graphed = (
            self._prefill_graphs
            and max(x.shape[1] for x in suffixes) <= self._suffix_lens[-1]
            and max(p.length for p in prefixes) <= self.max_cond
        )
        if graphed:
            step = PREFILL_JOINERS[-1]
            outs = [
                self._prefill_replay(prefixes[i : i + step], suffixes[i : i + step], slots[i : i + step])
                for i in range(0, len(slots), step)
            ]
            return outs[0] if len(outs) == 1 else torch.cat(outs)
        return self._prefill_eager(prefixes, suffixes, slots)

    def load_prefixes(self, prefixes: list[PrefixKV], slots: list[int]) -> None:
        """Copy each voice conditioning into its slot's rows (positions [0, length)), all layers."""
        r = self.rows_per_slot
        for prefix, slot in zip(prefixes, slots, strict=True):
            rows = self.row_ids[r * slot : r * slot + r]  # on the device already: no copy, no sync
            self.k_all[:, rows, :, : prefix.length] = prefix.k.unsqueeze(1)
            self.v_all[:, rows, :, : prefix.length] = prefix.v.unsqueeze(1)

    def _prefill_inputs(self, prefixes, suffixes, slots, pick: list[int], length: int):
        """Padded inputs for requests ``pick`` (indices; a repeat pads the batch): h on the
        device, rows / positions / last suffix index on the host."""
        r = self.rows_per_slot
        h = torch.cat([F.pad(suffixes[i].to(self.dtype), (0, 0, 0, length - suffixes[i].shape[1])) for i in pick])
        rows = torch.tensor(self.rows_of([slots[i] for i in pick]))
        pos = torch.stack([torch.arange(length) + prefixes[i].length for i in pick for _ in range(r)])
        # A short voice prompt padded to a long text's length could run past the cache: padding
        # lands on the last position instead (real positions end below it; decode overwrites).
        pos.clamp_(max=self.shape.max_len - 1)
        last = torch.tensor([suffixes[i].shape[1] - 1 for i in pick for _ in range(r)])
        return h, rows, pos, last

    def _prefill_eager(self, prefixes, suffixes, slots) -> torch.Tensor:
        length = max(x.shape[1] for x in suffixes)
        h, rows, pos, last = self._prefill_inputs(prefixes, suffixes, slots, list(range(len(slots))), length)
        kv_len = max(p.length + x.shape[1] for p, x in zip(prefixes, suffixes, strict=True))
        d = self.device
        return self._prefill_forward(h, rows.to(d), pos.to(d), last.to(d), kv_len)

    def _prefill_forward(self, h, rows, pos, last, kv_len: int) -> torch.Tensor:
        """Suffixes ``h`` (R*n, T, dim) at cache ``pos`` of ``rows``, attending to the rows'
        cache below ``kv_len``; logits at each row's ``last`` suffix position. What a prefill
        graph captures, with static (rows, T, kv_len) shape."""
        out = self._layers(h, pos, rows, kv_len, gather=True)
        return self.t3.speech_head(out[torch.arange(h.shape[0], device=self.device), last]).float()

    def _prefill_replay(self, prefixes, suffixes, slots) -> torch.Tensor:
        n = len(slots)
        joiners = _bucket(n, PREFILL_JOINERS)
        length = _bucket(max(x.shape[1] for x in suffixes), self._suffix_lens)
        # Padding requests repeat the last one: the same values written to the same cache rows.
        pick = [min(i, n - 1) for i in range(joiners)]
        h_in, rows_in, pos_in, last_in = self._prefill_inputs(prefixes, suffixes, slots, pick, length)
        r = self.rows_per_slot
        entry = self._prefill_graphs.get((joiners, length))
        if entry is None:  # CPU (tests): the same padded computation, eagerly
            d = self.device
            kv_len = self.max_cond + length
            return self._prefill_forward(h_in, rows_in.to(d), pos_in.to(d), last_in.to(d), kv_len)[: r * n]
        graph, (h, rows, pos, last), out = entry
        h.copy_(h_in)
        rows.copy_(rows_in, non_blocking=True)
        pos.copy_(pos_in, non_blocking=True)
        last.copy_(last_in, non_blocking=True)
        graph.replay()
        return out[: r * n].clone()  # the graph's output buffer is reused by the next replay

    # ---- decode: every slot of a bucket advances one token ----

    def _step(self, n_rows: int, kv_len: int) -> torch.Tensor:
        h = self.t3.speech_emb(self.tok[:n_rows])
        if not self.is_gpt:  # Chatterbox's own learned speech positions (GPT-2 adds its own)
            h = h + self.t3.speech_pos_emb.emb(self.speech_pos[:n_rows])
        h = self._layers(h[:, None, :], self.cache_pos[:n_rows, None], self.row_ids[:n_rows], kv_len)
        return self.t3.speech_head(h[:, 0]).float()

    def buckets_for(self, n_slots: int, max_pos: int) -> tuple[int, int]:
        return _bucket(n_slots, self.slot_buckets), _bucket(max_pos + 1, self.shape.kv_len_buckets)

    @torch.inference_mode()
    def decode(self, n_slots: int, max_pos: int) -> torch.Tensor:
        """Advance slots [0, bucket) one token: logits (R*bucket, V) fp32.

        The caller has set ``tok``/``speech_pos``/``cache_pos`` rows; idle slots in the
        bucket compute on stale rows harmlessly (their output is ignored).
        """
        slots, kv_len = self.buckets_for(n_slots, max_pos)
        graph = self._graphs.get((slots, kv_len))
        if graph is None:
            return self._step(self.rows_per_slot * slots, kv_len)
        graph[0].replay()
        return graph[1]

    @torch.inference_mode()
    def capture_graphs(self) -> int:
        """Capture one CUDA graph per (slot bucket, kv-length bucket); CUDA only."""
        if self.device.type != "cuda":
            return 0
        # Rows of never-used slots hold zeros: positions 0 keep every mask non-empty.
        self.cache_pos.zero_()
        self.speech_pos.zero_()
        self.tok.fill_(self.t3.hp.start_speech_token)
        side = self.stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for slots in self.slot_buckets:
                for kv_len in self.shape.kv_len_buckets:
                    for _ in range(2):  # warm-up: kernels pick algorithms outside capture
                        self._step(self.rows_per_slot * slots, kv_len)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        self._pool = torch.cuda.graph_pool_handle()
        for slots in reversed(self.slot_buckets):  # largest first: the pool fits the rest
            for kv_len in self.shape.kv_len_buckets:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self._pool, stream=self.stream, capture_error_mode="thread_local"):
                    out = self._step(self.rows_per_slot * slots, kv_len)
                self._graphs[(slots, kv_len)] = (graph, out)
        torch.cuda.synchronize()
        self._capture_prefill()
        return len(self._graphs) + len(self._prefill_graphs)

    def _capture_prefill(self) -> None:
        dim = self.t3.cfg.hidden_size
        for joiners in reversed(PREFILL_JOINERS):
            for length in reversed(self._suffix_lens):
                rows = self.rows_per_slot * joiners
                h = torch.zeros(rows, length, dim, dtype=self.dtype, device=self.device)
                row_ids = torch.arange(rows, device=self.device)  # slot 0.. rows: idle at start-up
                pos = (torch.arange(length, device=self.device) + self.max_cond).expand(rows, -1).contiguous()
                last = torch.full((rows,), length - 1, dtype=torch.long, device=self.device)
                kv_len = self.max_cond + length
                self.stream.wait_stream(torch.cuda.current_stream())  # the inputs above are filled there
                with torch.cuda.stream(self.stream):
                    for _ in range(2):
                        self._prefill_forward(h, row_ids, pos, last, kv_len)
                torch.cuda.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self._pool, stream=self.stream, capture_error_mode="thread_local"):
                    out = self._prefill_forward(h, row_ids, pos, last, kv_len)
                self._prefill_graphs[(joiners, length)] = (graph, (h, row_ids, pos, last), out)
        torch.cuda.synchronize()
