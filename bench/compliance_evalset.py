"""The compliance evaluation set through the real post-call pieces (issue 17 item 4).

Every call of devstack/evalset/calls.py is rendered (Piper agent; callers in espeak-ng, flite
and Piper voices), transcribed by the pipeline's own stage (faster-whisper tiny.en, redaction as
one conversation), read for a do-not-call request by post-call's rules, and analysed: by an LLM
(``--analyser llm``, the default: llama.cpp's server with the bundled SmolLM2-135M, configured as
the local deployment configures the model; or ``--llm-base-url``), or by the extractive analyser
(``--analyser extractive``, no model: what the local stack runs). Prints one JSON line with the
figures, then a table:

- redaction recall: PII spans with no must-not-appear form in the redacted transcripts (recording
  and live) or the stored analysis (goal 100%);
- do-not-call recall and precision of post-call's reading (goal >= 95% each);
- analysis accuracy: sentiment and follow-up, a refused (invalid) analysis counting as wrong, next
  to always-the-most-common-answer.

    .venv/bin/python bench/compliance_evalset.py [--no-llm | --analyser extractive] [--calls NAME ...] [--cache DIR] [--details FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LLM_ALIAS = "smollm2-135m"


def _local_llm(threads: int):
    """The local stack's llama.cpp server on a free loopback port: (base url, process)."""
    import socket

    from orchestration.defs.postcall.llama_server import bundled_gguf

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.NamedTemporaryFile(prefix="evalset-llama-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "orchestration.defs.postcall.llama_server", "--model", bundled_gguf(),
            "--model_alias", LLM_ALIAS, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
            "--n_threads", str(threads),
        ],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited ({proc.returncode}); log: {log.name}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"http://127.0.0.1:{port}/v1", proc
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"llama.cpp server not up in 120 s; log: {log.name}")


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _accuracy(figures: dict, name: str) -> str:
    baseline = figures.get(f"baseline_{name}_accuracy")
    return f"{_pct(figures[f'{name}_accuracy'])} ({_pct(baseline)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-llm", action="store_true", help="skip the analysis (redaction and do-not-call only)")
    parser.add_argument(
        "--analyser",
        choices=["llm", "extractive"],
        default="llm",
        help="who writes the analyses: the model (no extractive fallback: the model's own figures), or the "
        "extractive analyser (no model; as the local stack runs)",
    )
    parser.add_argument("--llm-base-url", help="an OpenAI-compatible endpoint instead of the local SmolLM2 server")
    parser.add_argument("--llm-model", default=LLM_ALIAS)
    parser.add_argument("--llm-threads", type=int, default=2)
    parser.add_argument(
        "--llm-timeout",
        type=float,
        default=600,
        help="per request: on a loaded 2-core machine SmolLM2 can take minutes",
    )
    parser.add_argument("--calls", nargs="*", help="only these calls (names from devstack/evalset/calls.py)")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "callcenter-evalset", help="rendered calls"
    )
    parser.add_argument("--details", type=Path, help="write each call's result (redacted) as JSON lines here")
    parser.add_argument("--stt-threads", type=int, default=2)
    parser.add_argument("--score", type=Path, nargs="+", help="score results saved by --details instead of running")
    args = parser.parse_args()

    from devstack.evalset.calls import BY_NAME, CALLS
    from devstack.evalset.run import as_dict, from_dict, run_call, score

    if args.score:
        saved = [from_dict(json.loads(line)) for path in args.score for line in path.read_text().splitlines() if line]
        report(score(saved) | {"seconds": None, "llm": "from " + ", ".join(str(p) for p in args.score)})
        return
    from orchestration.defs.postcall.analysis import Analyser, CallLLM, StructuredOutput
    from orchestration.defs.postcall.speech import WhisperSpeechToText

    calls = [BY_NAME[n] for n in args.calls] if args.calls else list(CALLS)
    stt = WhisperSpeechToText(cpu_threads=args.stt_threads)
    llm, server = None, None
    if not args.no_llm and args.analyser == "extractive":
        # the model's endpoint is never called: the extractive analyser writes every analysis
        llm = CallLLM(base_url="http://127.0.0.1:9/v1", model="none", analyser=Analyser.EXTRACTIVE)
    elif not args.no_llm:
        base_url = args.llm_base_url
        if base_url is None:
            base_url, server = _local_llm(args.llm_threads)
        # As the local deployment configures it (orchestration/defs/postcall/__init__.py).
        llm = CallLLM(
            base_url=base_url,
            model=args.llm_model,
            structured_output=StructuredOutput.JSON_OBJECT_SCHEMA,
            max_tokens=400,
            reads_do_not_call=False,
            timeout_s=args.llm_timeout,  # accuracy is measured here, not speed
        )
    # A run stopped with SIGTERM still stops its llama.cpp server (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    results = []
    details = args.details.open("w") if args.details else None
    try:
        for call in calls:
            results.append(run_call(call, stt, llm, cache_dir=args.cache))
            r = results[-1]
            if details:  # as it goes: a long run stopped early still leaves what it measured
                details.write(json.dumps(as_dict(r)) + "\n")
                details.flush()
            print(
                f"{r.name:42s} {r.voice:16s} leaks={sum(s.leaked for s in r.spans)}/{len(r.spans)} "
                f"dnc={int(r.dnc_expected)}->{int(r.dnc_postcall)} sentiment={r.sentiment_expected}->{r.sentiment} "
                f"follow_up={int(r.follow_up_expected)}->{r.follow_up}",
                file=sys.stderr,
            )
    finally:
        if details:
            details.close()
        if server is not None:
            server.terminate()
            server.wait(10)
    report(
        score(results)
        | {
            "seconds": round(time.perf_counter() - started, 1),
            "llm": None if llm is None or args.analyser != "llm" else args.llm_model,
        }
    )


def report(figures: dict) -> None:
    """One JSON line, then the table and each leak and do-not-call error by call name."""
    print(json.dumps(figures))
    rows = [
        (
            "calls (engines)",
            f"{figures['calls']} ({', '.join(figures['engines'])}; {figures['voices']} caller voices)",
            "",
        ),
        ("PII spans (heard by STT)", f"{figures['pii_spans']} ({figures['pii_spans_heard_by_stt']})", ""),
        ("redaction recall", _pct(figures["redaction_recall"]), "100%"),
        ("do-not-call recall (post-call)", _pct(figures["dnc_postcall"]["recall"]), ">= 95%"),
        ("do-not-call precision (post-call)", _pct(figures["dnc_postcall"]["precision"]), ">= 95%"),
        (
            "analysis valid (" + (", ".join(figures.get("analysers", [])) or "none") + ")",
            _pct(figures["analysis_valid"]),
            "",
        ),
        ("sentiment accuracy (most common answer)", _accuracy(figures, "sentiment"), ""),
        ("follow-up accuracy (most common answer)", _accuracy(figures, "follow_up"), ""),
    ]
    if held := figures.get("held_out"):
        dnc = held["dnc_postcall"]
        rows.append(
            (
                "held-out calls (not tuned on)",
                f"{held['calls']}: redaction {_pct(held['redaction_recall'])}, do-not-call recall "
                f"{_pct(dnc['recall'])} precision {_pct(dnc['precision'])}",
                "",
            )
        )
    print(f"\n| {'figure':44s} | {'measured':48s} | goal   |\n|{'-' * 46}|{'-' * 50}|--------|")
    for name, value, goal in rows:
        print(f"| {name:44s} | {value:48s} | {goal:6s} |")
    for leak in figures["leaks"]:
        print(
            f"LEAK {leak['call']}: {leak['kind']} (recording {leak['recording']}, live {leak['live']}, analysis {leak['analysis']} forms)"
        )
    for name in figures["dnc_missed"]:
        print(f"DNC MISSED {name}")
    for name in figures["dnc_false"]:
        print(f"DNC FALSE {name}")


if __name__ == "__main__":
    main()
