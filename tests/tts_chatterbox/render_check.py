"""Run inside .venv-chatterbox: the one-graph S3Gen render vs upstream's two calls (CPU, eager).

A randomly initialised S3Gen of the real classes. Prints one JSON line:
- upstream_vs_render: max |diff| of one window rendered by upstream flow_inference +
  hift_inference and by S3GenRenderer.forward, same seed (same noise draws);
- batched_vs_alone: max |diff| of a short window rendered alone and padded in a batch with a
  longer one, noise switched off (zeros) so the two renders are comparable;
- istft: max |diff| of graph_safe_istft vs torch.istft;
- meanflow_*: the same as upstream_vs_render for Turbo's 2-step (meanflow) S3Gen;
- vocoder: windows submitted at once to BatchedVocoder (batches of two, most urgent first)
  come back as rendered alone, first windows faded in.
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from doubles.tiny_chatterbox import random_s3gen_reference  # noqa: E402
from tts.app.backends.chatterbox_fast.s3gen_render import S3GenRenderer, graph_safe_istft  # noqa: E402


def main() -> None:
    from chatterbox.models.s3gen import S3Gen

    torch.manual_seed(0)
    s3gen = S3Gen().eval()
    ref = random_s3gen_reference(20)
    g = torch.Generator().manual_seed(2)
    win = torch.randint(0, 6561, (1, 14), generator=g)
    renderer = S3GenRenderer(s3gen, cuda_graphs=False, n_timesteps=4)
    voice = renderer.voice(ref)

    with torch.inference_mode():
        torch.manual_seed(7)
        mels = s3gen.flow_inference(win, ref_dict=dict(ref), finalize=True, n_cfm_timesteps=4)
        up, _ = s3gen.hift_inference(mels)
        torch.manual_seed(7)
        ours = renderer.forward(win, torch.tensor([14]), voice.prompt_token, voice.prompt_feat, voice.spks)
    upstream_vs_render = (up[0] - ours[0, : up.shape[1]]).abs().max().item()
    meanflow = meanflow_vs_upstream(ref, win)
    half = autocast_render(s3gen, ref, win, ours[0, : up.shape[1]])

    # Noise off: torch.randn_like / torch.rand / rand_like return zeros, so renders are deterministic.
    zeros_like = lambda t, *a, **k: torch.zeros_like(t, *a, **k)  # noqa: E731
    zeros = lambda *shape, **k: torch.zeros(*shape, **{x: y for x, y in k.items() if x != "generator"})  # noqa: E731
    torch.randn_like, torch.rand_like, torch.rand, torch.randn = zeros_like, zeros_like, zeros, zeros
    short = win[0, :10].tolist()
    long_ = torch.randint(0, 6561, (30,), generator=g).tolist()
    alone = renderer.render(voice, [short])[0, : 10 * 960]
    both = renderer.render(voice, [long_, short])
    batched_vs_alone = (alone - both[1, : 10 * 960]).abs().max().item()

    from tts.app.backends.chatterbox_fast.vocoder import BatchedVocoder

    vocoder = BatchedVocoder(s3gen, max_batch=2, n_cfm_timesteps=4)
    vocoder.start()
    wins = [long_[:12], long_[3:20], short, long_[5:]]
    futs = [vocoder.submit(ref, w, first=i < 2, deadline=-i) for i, w in enumerate(wins)]
    got = [f.result(timeout=120) for f in futs]
    vocoder.stop()
    fade = s3gen.trim_fade.numpy()
    want = []
    for i, w in enumerate(wins):
        a = renderer.render(voice, [w])[0, : len(w) * 960].numpy().copy()
        if i < 2:
            a[: len(fade)] *= fade
        want.append(a)
    vocoder_diff = max(float(abs(x - y).max()) for x, y in zip(got, want, strict=True))
    same_name = reuploaded_voice(s3gen, renderer, ref, short)
    deferred = deferred_capture(s3gen, ref, short)

    mag = torch.rand(3, 9, 50, generator=g) * 3
    ph = torch.randn(3, 9, 50, generator=g)
    window = torch.hann_window(16, periodic=True)
    ref_istft = torch.istft(torch.complex(mag * torch.cos(ph), mag * torch.sin(ph)), 16, 4, 16, window=window)
    istft = (ref_istft - graph_safe_istft(mag, ph, window, 16, 4)).abs().max().item()
    print(
        json.dumps(
            {
                "upstream_vs_render": upstream_vs_render,
                "upstream_peak": up.abs().max().item(),
                "batched_vs_alone": batched_vs_alone,
                "alone_peak": alone.abs().max().item(),
                "istft": istft,
                "vocoder_vs_alone": vocoder_diff,
                "vocoder_lengths_ok": [len(x) for x in got] == [len(w) * 960 for w in wins],
                "windows_rendered": vocoder.windows,
                "render_len": ours.shape[1],
                **same_name,
                **deferred,
                **meanflow,
                **half,
            }
        )
    )


def autocast_render(s3gen, ref: dict, win: torch.Tensor, fp32: torch.Tensor) -> dict:
    """The same window (same seed) rendered with the encoder and HiFi-GAN under bf16 autocast,
    against the float32 render; and which parts ran in which dtype."""
    renderer = S3GenRenderer(s3gen, cuda_graphs=False, n_timesteps=4, autocast="bfloat16")
    voice = renderer.voice(ref)
    seen: dict[str, str] = {}
    hift = s3gen.mel2wav

    def record(name: str):
        def hook(_mod, _inputs, out) -> None:  # returns None: the output stays as it is
            seen.setdefault(name, str((out[0] if isinstance(out, tuple) else out).dtype))

        return hook

    hooks = [
        mod.register_forward_hook(record(name))
        for name, mod in (
            ("encoder", s3gen.flow.encoder),
            ("f0_predictor", hift.f0_predictor),
            ("source", hift.m_source),
            ("conv_pre", hift.conv_pre),
            ("conv_post", hift.conv_post),
        )
    ]
    est = s3gen.flow.decoder.estimator
    est_forward = est.forward  # the solver calls .forward directly: no module hooks fire

    def estimator(*a, **k):
        out = est_forward(*a, **k)
        seen.setdefault("estimator", str(out.dtype))
        return out

    est.forward = estimator
    with torch.inference_mode():
        torch.manual_seed(7)
        half = renderer.forward(win, torch.tensor([win.shape[1]]), voice.prompt_token, voice.prompt_feat, voice.spks)
    del est.forward
    for h in hooks:
        h.remove()
    half = half[0, : fp32.shape[0]]
    return {
        "autocast_dtypes": seen,
        "autocast_out_dtype": str(half.dtype),
        "autocast_vs_fp32": (half - fp32).abs().max().item(),
        "autocast_rms_err": ((half - fp32).pow(2).mean().sqrt() / fp32.pow(2).mean().sqrt()).item(),
    }


def reuploaded_voice(s3gen, renderer, ref: dict, window: list[int]) -> dict:
    """A voice deleted and uploaded again under its old name is a new reference dict: its
    window, queued in the same vocoder batch as one in the old reference, must render in its
    own timbre (noise is off here, so renders compare exactly)."""
    from tts.app.backends.chatterbox_fast.vocoder import BatchedVocoder

    new_ref = random_s3gen_reference(20, seed=5)
    vocoder = BatchedVocoder(s3gen, max_batch=2, n_cfm_timesteps=4)
    futs = [vocoder.submit(r, window, first=False) for r in (ref, new_ref)]  # queued, then one batch
    vocoder.start()
    old_audio, new_audio = (f.result(timeout=120) for f in futs)
    vocoder.stop()
    n = len(window) * 960
    want_new = renderer.render(renderer.voice(new_ref), [window])[0, :n].numpy()
    want_old = renderer.render(renderer.voice(ref), [window])[0, :n].numpy()
    return {
        "reuploaded_vs_own_voice": float(abs(new_audio - want_new).max()),
        "reuploaded_vs_old_voice": float(abs(new_audio - want_old).max()),
        "old_vs_own_voice": float(abs(old_audio - want_old).max()),
    }


def deferred_capture(s3gen, ref: dict, window: list[int]) -> dict:
    """Graph capture policy, with capture and replay stood in for (no CUDA here): before the
    vocoder starts, a new bucket is captured at once (warm-up); once it serves, a new bucket
    (a cloned voice's prompt length) renders eagerly and is captured only when no window
    waits, so no caller waits behind a capture."""
    from tts.app.backends.chatterbox_fast.vocoder import BatchedVocoder

    vocoder = BatchedVocoder(s3gen, max_batch=2, n_cfm_timesteps=4)
    r = vocoder.renderer
    events = []
    r.use_graphs = True
    r._capture = lambda key: events.append(("capture", key[2])) or r._graphs.setdefault(key, "entry")
    r._replay = lambda entry, voice, tokens, lens: (
        events.append(("replay", voice.prompt_len)) or torch.zeros(tokens.shape[0], tokens.shape[1] * 960)
    )
    eager = r.forward
    r.forward = lambda *a: events.append(("eager", a[2].shape[1])) or eager(*a)
    vocoder.render(ref, [window], [False])  # warm-up: captured, then replayed
    warm = list(events)
    events.clear()
    cloned = random_s3gen_reference(12, seed=8)  # another prompt length
    futs = [vocoder.submit(cloned, window, first=False) for _ in range(3)]  # 3 windows: 2 batches
    vocoder.start()
    for f in futs:
        f.result(timeout=120)
    deadline = time.time() + 30
    while r.deferred and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    serving = list(events)
    events.clear()
    vocoder.render(cloned, [window], [False])  # captured by now: replayed
    vocoder.stop()
    return {"capture_warm_up": warm, "capture_serving": serving, "capture_after_idle": list(events)}


def meanflow_vs_upstream(ref: dict, win: torch.Tensor) -> dict:
    """Turbo's distilled S3Gen (meanflow, 2 steps, no CFG): renderer vs upstream, same seed."""
    from chatterbox.models.s3gen import S3Gen

    torch.manual_seed(0)
    s3gen = S3Gen(meanflow=True).eval()
    renderer = S3GenRenderer(s3gen, cuda_graphs=False)
    voice = renderer.voice(ref)
    with torch.inference_mode():
        torch.manual_seed(11)
        mels = s3gen.flow_inference(win, ref_dict=dict(ref), finalize=True)  # 2 steps: its default
        up, _ = s3gen.hift_inference(mels)
        torch.manual_seed(11)
        ours = renderer.forward(win, torch.tensor([win.shape[1]]), voice.prompt_token, voice.prompt_feat, voice.spks)
    return {
        "meanflow_steps": renderer.n_timesteps,
        "meanflow_upstream_peak": up.abs().max().item(),
        "meanflow_vs_upstream": (up[0] - ours[0, : up.shape[1]]).abs().max().item(),
    }


if __name__ == "__main__":
    main()
