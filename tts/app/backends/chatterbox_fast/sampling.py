"""Next-token choice for many requests at once, matching upstream T3 inference per row.

Chatterbox (``T3.inference``), per request: CFG combine -> repetition penalty (over BOS and
every token emitted so far) -> temperature -> min-p -> top-p -> softmax -> multinomial.
Turbo (``T3.inference_turbo``, no CFG): temperature -> top-k -> top-p -> repetition penalty
(over the tokens emitted so far; BOS on the first step only) -> softmax -> multinomial.
Each knob here is a per-slot tensor so requests with different settings share one pass.
``greedy`` rows take the arg-max of the processed logits (what upstream's min_p=1.0, or
top_k=1 for Turbo, reduces to).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SlotSampling:
    """Per-slot sampling settings, kept on the device (index = slot)."""

    cfg_weight: torch.Tensor
    repetition_penalty: torch.Tensor
    temperature: torch.Tensor
    min_p: torch.Tensor
    top_p: torch.Tensor
    top_k: torch.Tensor  # long; 0 = off (Turbo only)
    greedy: torch.Tensor  # bool
    seen: torch.Tensor  # (slots, V) bool: tokens the repetition penalty applies to

    @classmethod
    def empty(cls, max_slots: int, vocab: int, device: torch.device) -> SlotSampling:
        def f(v: float) -> torch.Tensor:
            return torch.full((max_slots,), v, dtype=torch.float32, device=device)

        return cls(
            cfg_weight=f(0.5),
            repetition_penalty=f(1.2),
            temperature=f(0.8),
            min_p=f(0.05),
            top_p=f(1.0),
            top_k=torch.zeros(max_slots, dtype=torch.long, device=device),
            greedy=torch.zeros(max_slots, dtype=torch.bool, device=device),
            seen=torch.zeros(max_slots, vocab, dtype=torch.bool, device=device),
        )

    def assign(
        self, slot: int, *, cfg_weight, repetition_penalty, temperature, min_p, top_p, greedy, bos: int, top_k: int = 0
    ) -> None:
        self.top_k[slot] = top_k
        self.cfg_weight[slot] = cfg_weight
        self.repetition_penalty[slot] = repetition_penalty
        self.temperature[slot] = temperature
        self.min_p[slot] = min_p
        self.top_p[slot] = top_p
        self.greedy[slot] = bool(greedy)
        self.seen[slot].zero_()
        self.seen[slot, bos] = True


def choose_tokens(
    logits: torch.Tensor, slots: torch.Tensor, s: SlotSampling, generator: torch.Generator | None = None
) -> torch.Tensor:
    """logits: (2*n, V) fp32 with CFG pairs adjacent, for ``slots`` (n,). Returns (n,) tokens."""
    cond, uncond = logits[0::2], logits[1::2]
    w = s.cfg_weight[slots, None]
    x = cond + w * (cond - uncond)
    # Repetition penalty (transformers' RepetitionPenaltyLogitsProcessor, per row).
    p = s.repetition_penalty[slots, None]
    penalised = torch.where(x < 0, x * p, x / p)
    x = torch.where(s.seen[slots], penalised, x)
    t = s.temperature[slots, None]
    x = torch.where(t != 1.0, x / t, x)
    # Min-p: drop tokens below min_p * the top probability (always keeps the top one).
    probs = torch.softmax(x, dim=-1)
    x = x.masked_fill(probs < s.min_p[slots, None] * probs.amax(dim=-1, keepdim=True), float("-inf"))
    x = _top_p(x, s.top_p[slots, None])
    return _pick(x, slots, s, generator)


def choose_tokens_turbo(
    logits: torch.Tensor, slots: torch.Tensor, s: SlotSampling, generator: torch.Generator | None = None
) -> torch.Tensor:
    """logits: (n, V) fp32, one row per slot (Turbo has no CFG). Returns (n,) tokens."""
    return _pick(turbo_scores(logits, slots, s), slots, s, generator)


def turbo_scores(logits: torch.Tensor, slots: torch.Tensor, s: SlotSampling) -> torch.Tensor:
    """What upstream's Turbo logits processors make of ``logits`` (before softmax)."""
    x = logits
    t = s.temperature[slots, None]
    x = torch.where((t > 0) & (t != 1.0), x / t, x)
    # Top-k as transformers does it: drop what is below the k-th largest (ties kept).
    k = s.top_k[slots]
    if bool((k > 0).any()):
        k = torch.where(k > 0, k.clamp(max=x.shape[-1]), x.shape[-1])
        kth = torch.sort(x, dim=-1, descending=True).values.gather(1, (k - 1)[:, None])
        x = x.masked_fill(x < kth, float("-inf"))
    x = _top_p(x, s.top_p[slots, None])
    # Repetition penalty last, as upstream's processor list orders it (-inf stays -inf).
    p = s.repetition_penalty[slots, None]
    return torch.where(s.seen[slots], torch.where(x < 0, x * p, x / p), x)


def _top_p(x: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Top-p as transformers does it: ascending sort, drop the low tail whose mass <= 1 - top_p."""
    if not bool((top_p < 1.0).any()):
        return x
    sorted_x, order = torch.sort(x, descending=False)
    cum = torch.softmax(sorted_x, dim=-1).cumsum(dim=-1)
    drop_sorted = (cum <= 1 - top_p) & (top_p < 1.0)
    drop_sorted[:, -1] = False
    return x.masked_fill(drop_sorted.scatter(1, order, drop_sorted), float("-inf"))


def _pick(x: torch.Tensor, slots: torch.Tensor, s: SlotSampling, generator: torch.Generator | None) -> torch.Tensor:
    greedy = x.argmax(dim=-1)
    if bool(s.greedy[slots].all()):
        chosen = greedy
    else:
        sampled = torch.multinomial(torch.softmax(x, dim=-1), 1, generator=generator).squeeze(1)
        chosen = torch.where(s.greedy[slots], greedy, sampled)
    s.seen[slots, chosen] = True
    return chosen
