#!/usr/bin/env bash
# Creates .venv-chatterbox: chatterbox-tts 0.1.7 on the torch of the dev lock (PyPI's build; runs on the CPU here).
# chatterbox-tts pins torch 2.6 / numpy<2 / gradio, which must never enter .venv, so it is
# installed with --no-deps next to the few packages its model code really imports.
# Idempotent: a stamp of this script's content makes a second run return at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${CHATTERBOX_VENV:-.venv-chatterbox}"
PYTHON="${PYTHON:-python3.11}"
stamp_now="$(sha256sum tests/tts_chatterbox/setup_env.sh | cut -d' ' -f1)"
if [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$stamp_now" ]; then
  echo "[setup_env] $VENV up to date"; exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# The dev lock's torch, from PyPI (pip's cache makes this a copy after the first setup).
"${PIP[@]}" install "torch==$(grep -E '^torch==' requirements/dev.lock | cut -d= -f3)"
# What chatterbox's model code imports, on torch 2.13 / numpy 2. transformers is the version
# chatterbox-tts 0.1.7 pins, i.e. the one the GPU image runs: the engine reaches into its Llama
# and GPT-2 modules, so the CPU checks must exercise that version, not a newer one.
"${PIP[@]}" install \
  "transformers==5.2.0" "tokenizers==0.22.1" "huggingface_hub==1.3.0" "safetensors==0.8.0" \
  "numpy==2.4.6" "scipy==1.17.1" "soundfile==0.14.0" "librosa==0.11.0" \
  "diffusers==0.29.0" "conformer==0.3.2" "einops" "omegaconf" "tqdm" "pytest" "onnx" "setuptools<81"
# torchaudio: PyPI's newest is built for another torch; chatterbox only needs its pure-Python
# parts (kaldi fbank in s3gen.xvector, resample), so it goes in without deps.
"${PIP[@]}" install --no-deps "torchaudio==2.11.0" "s3tokenizer==0.3.0" "resemble-perth==1.0.1" "pyloudnorm" "future"
"${PIP[@]}" install --no-deps "chatterbox-tts==0.1.7"
# torchaudio's compiled ops are built for torch 2.11 and fail to load on 2.13; without them it
# falls back to its pure-Python modules (kaldi fbank, resample), all chatterbox uses.
rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
echo "$stamp_now" > "$VENV/.installed"
echo "[setup_env] done: $VENV"
