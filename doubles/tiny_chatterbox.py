"""Tiny, randomly initialised Chatterbox T3 of the real classes (runs in .venv-chatterbox).

Same `T3`, `T3Config`, `T3CondEnc`, Llama backbone and embeddings as chatterbox-tts 0.1.7,
with a small Llama config registered under its own name so CPU decoding takes milliseconds.
"""

from __future__ import annotations

import torch

TINY_LLAMA = "Llama_tiny_test"


def tiny_t3(seed: int = 0, *, layers: int = 2, hidden: int = 256, heads: int = 4, kv_heads: int = 2):
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.llama_configs import LLAMA_520M_CONFIG_DICT, LLAMA_CONFIGS
    from chatterbox.models.t3.modules.t3_config import T3Config

    cfg = dict(LLAMA_520M_CONFIG_DICT)
    cfg.update(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
    )
    LLAMA_CONFIGS[TINY_LLAMA] = cfg
    hp = T3Config.english_only()
    hp.llama_config_name = TINY_LLAMA
    hp.use_perceiver_resampler = False  # the Perceiver is hard-wired to 1024 channels
    hp.speech_cond_prompt_len = 12
    torch.manual_seed(seed)
    t3 = T3(hp).eval()
    # HF init leaves projections tiny (std 0.02): widen them so logits have real margins.
    with torch.no_grad():
        for p in t3.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
    return t3


def tiny_cond(t3, seed: int = 1, exaggeration: float = 0.5):
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    g = torch.Generator().manual_seed(seed)
    return T3Cond(
        speaker_emb=torch.randn(1, t3.hp.speaker_embed_size, generator=g),
        cond_prompt_speech_tokens=torch.randint(0, 6561, (1, t3.hp.speech_cond_prompt_len), generator=g),
        emotion_adv=exaggeration * torch.ones(1, 1, 1),
    )


def text_tokens(t3, text_ids: list[int]) -> torch.Tensor:
    """[SOT] ids [EOT], duplicated for the CFG pair, as ChatterboxTTS.generate builds it."""
    t = torch.tensor([text_ids], dtype=torch.int32)
    t = torch.cat([t, t], dim=0)
    t = torch.nn.functional.pad(t, (1, 0), value=t3.hp.start_text_token)
    return torch.nn.functional.pad(t, (0, 1), value=t3.hp.stop_text_token)


TINY_GPT2 = "GPT2_tiny_test"


def tiny_turbo_t3(seed: int = 0, *, layers: int = 2, hidden: int = 256, heads: int = 4):
    """Turbo's T3 (GPT-2 backbone, no CFG, no learned speech positions), tiny."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.llama_configs import GPT2_MEDIUM_CONFIG, LLAMA_CONFIGS

    cfg = dict(GPT2_MEDIUM_CONFIG)
    cfg.update(n_layer=layers, n_embd=hidden, hidden_size=hidden, n_head=heads, n_positions=1024, n_ctx=1024)
    LLAMA_CONFIGS[TINY_GPT2] = cfg
    hp = turbo_hparams(TINY_GPT2, speech_cond_prompt_len=12)  # a short speech prompt
    torch.manual_seed(seed)
    t3 = T3(hp).eval()
    with torch.no_grad():
        for p in t3.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
    return t3


def turbo_text_tokens(ids: list[int]) -> torch.Tensor:
    """GPT-2 token ids as ChatterboxTurboTTS.generate passes them: one row, no SOT/EOT."""
    return torch.tensor([ids], dtype=torch.long)


def turbo_hparams(backbone: str = "GPT2_medium", *, speech_cond_prompt_len: int = 375):
    """Turbo's T3Config as ChatterboxTurboTTS.from_local sets it (its defaults: the real model)."""
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = backbone
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = speech_cond_prompt_len
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def random_s3gen_reference(prompt_tokens: int, seed: int = 1) -> dict:
    """An S3Gen reference dict (``S3Gen.embed_ref``'s keys) of random prompt tokens, mels and
    x-vector: 2 mel frames per token, as S3Gen's 50 Hz mels against 25 Hz tokens."""
    g = torch.Generator().manual_seed(seed)
    return {
        "prompt_token": torch.randint(0, 6561, (1, prompt_tokens), generator=g),
        "prompt_token_len": torch.tensor([prompt_tokens]),
        "prompt_feat": torch.randn(1, 2 * prompt_tokens, 80, generator=g),
        "prompt_feat_len": None,
        "embedding": torch.randn(1, 192, generator=g),
    }


def drain(job) -> list[int]:
    """Every token a DecodeJob emits, up to FINISHED."""
    from tts.app.backends.chatterbox_fast.scheduler import FINISHED

    got = []
    while (tok := job.tokens.get(timeout=60)) is not FINISHED:
        got.append(tok)
    return got


def prefill_modes_diff(t3, shape, jobs_fn, slots=(0, 2, 3)) -> dict:
    """Three ways to join the same requests (``jobs_fn()``, fresh each time) into ``slots``,
    compared on the logits and on every real cache entry (last layer):
    - full: the whole prompt causally from scratch (no cached conditioning), the reference;
    - eager: the cached voice conditioning copied in, then text + BOS attending to it;
    - padded: the same, as the CUDA graph replays it (joiners padded by repeating the last,
      text padded to a bucket)."""
    from tts.app.backends.chatterbox_fast.decoder import T3BatchDecoder
    from tts.app.backends.chatterbox_fast.scheduler import DecodeScheduler

    slots = list(slots)
    runs = {}
    for mode in ("full", "eager", "padded"):
        decoder = T3BatchDecoder(t3, shape, dtype=torch.float32, device="cpu")
        sched = DecodeScheduler(decoder)
        jobs = jobs_fn()
        prompts = [sched._prompt_embeds(job) for job in jobs]
        lens = [e.shape[1] for e, _ in prompts]
        rps = decoder.rows_per_slot
        with torch.inference_mode():
            if mode == "full":
                logits = []
                for (e, _), slot in zip(prompts, slots, strict=True):
                    rows = torch.tensor(decoder.rows_of([slot]))
                    out = decoder._layers(e, torch.arange(e.shape[1])[None].expand(rps, -1), rows, kv_len=None)
                    logits.append(t3.speech_head(out[:, -1]).float())
                logits = torch.cat(logits)
            else:
                prefixes, suffixes = sched.join_inputs(jobs)
                decoder.load_prefixes(prefixes, slots)
                fn = decoder._prefill_replay if mode == "padded" else decoder._prefill_eager
                logits = fn(prefixes, suffixes, slots)
        cache = [decoder.k_cache[-1][rps * s : rps * s + rps, :, :n].clone() for s, n in zip(slots, lens, strict=True)]
        runs[mode] = (logits, cache)

    def diff(a, b) -> float:
        (la, ca), (lb, cb) = runs[a], runs[b]
        return max([(la - lb).abs().max().item()] + [(x - y).abs().max().item() for x, y in zip(ca, cb, strict=True)])

    return {"cached_vs_full": diff("eager", "full"), "padded_vs_eager": diff("padded", "eager")}
