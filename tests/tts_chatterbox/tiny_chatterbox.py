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
    from chatterbox.models.t3.modules.t3_config import T3Config

    cfg = dict(GPT2_MEDIUM_CONFIG)
    cfg.update(n_layer=layers, n_embd=hidden, hidden_size=hidden, n_head=heads, n_positions=1024, n_ctx=1024)
    LLAMA_CONFIGS[TINY_GPT2] = cfg
    # As ChatterboxTurboTTS.from_local sets it, with a short speech prompt.
    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = TINY_GPT2
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 12
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
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
