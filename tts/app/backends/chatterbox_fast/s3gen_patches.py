"""Host round trips removed from S3Gen's HiFi-GAN source module (same math, on the device).

Upstream ``SineGen.forward`` allocates its harmonic matrix (batch x 9 x samples, ~4 MB per
second of audio) on the CPU and copies it to the GPU, and draws the harmonics' random phases
on the CPU: every vocoder batch waits for a synchronous pageable copy. ``install`` replaces
the forward of one model's SineGen instance with a device-side equivalent and moves the STFT
window (re-copied on every call upstream) to the device once.
"""

from __future__ import annotations

import math
import types

import torch


def _sinegen_forward(self, f0: torch.Tensor):
    """f0: [B, 1, samples] in Hz -> (sine_waves, uv, noise), as upstream SineGen.forward."""
    harmonics = torch.arange(1, self.harmonic_num + 2, device=f0.device, dtype=f0.dtype).view(1, -1, 1)
    f_mat = f0 * harmonics / self.sampling_rate  # [B, harmonics, samples]
    theta = 2 * math.pi * (torch.cumsum(f_mat, dim=-1) % 1)
    phase = (torch.rand(f0.size(0), self.harmonic_num + 1, 1, device=f0.device, dtype=f0.dtype) * 2 - 1) * math.pi
    phase[:, 0, :] = 0
    sine_waves = self.sine_amp * torch.sin(theta + phase)
    uv = self._f02uv(f0)
    noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
    noise = noise_amp * torch.randn_like(sine_waves)
    return sine_waves * uv + noise, uv, noise


def install(s3gen) -> bool:
    hift = s3gen.mel2wav
    device = next(s3gen.parameters()).device
    sine = getattr(getattr(hift, "m_source", None), "l_sin_gen", None)
    if sine is None or device.type != "cuda":
        return False
    sine.forward = types.MethodType(_sinegen_forward, sine)
    if torch.is_tensor(getattr(hift, "stft_window", None)):
        hift.stft_window = hift.stft_window.to(device)
    return True
