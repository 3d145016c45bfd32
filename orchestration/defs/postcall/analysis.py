"""LLM analysis of one redacted transcript, as structured output validated by pydantic.

The model is asked for JSON matching ``CallAnalysis``'s schema (with the campaign's own
fields spelled out), constrained by the server: vLLM takes OpenAI's ``json_schema``
response format, llama.cpp's server takes ``json_object`` with a ``schema``. Output that
still fails validation is retried, then reported as a failed analysis with the reason:
never a made-up record. Where the model cannot write a usable analysis (the local stack's), the
extractive analyser (extractive.py) writes it instead, labelled as such: ``CallLLM.analyser``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import dagster as dg
from openai import APIConnectionError, APIStatusError, APITimeoutError, OpenAI
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from callcenter.record import AnalysisStatus, CallAnalysis, Sentiment, llm_analyser
from callcenter.redaction import RedactionPolicy, redact, redact_value
from callcenter.report import Turn
from orchestration.defs.postcall.extractive import extractive_analysis
from orchestration.defs.postcall.records import AnalyzedCall


class Analyser(StrEnum):
    """Who writes post-call's analyses (the label each analysis carries: ``CallAnalysis.analyser``)."""

    LLM = "llm"  # the served model; "llm:<model>"
    EXTRACTIVE = "extractive"  # rules over the redacted transcript, no model (extractive.py)


class StructuredOutput(StrEnum):
    JSON_SCHEMA = "json_schema"  # OpenAI/vLLM: response_format={"type": "json_schema", ...}
    JSON_OBJECT_SCHEMA = "json_object_schema"  # llama.cpp server: {"type": "json_object", "schema": ...}


class AnalysisFailed(Exception):
    """The model's output never validated; ``reason`` is stored on the call record."""

    def __init__(self, reason: str, attempts: int, transient: bool = False, seconds: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.seconds = seconds
        # The endpoint was down or overloaded (not the model's output): worth retrying the whole step later.
        self.transient = transient


@dataclass
class AnalysisResult:
    analysis: CallAnalysis
    attempts: int
    seconds: float


SYSTEM_PROMPT = (
    "You analyse phone calls between an automated call-center agent and a caller. "
    "Answer only with JSON matching the schema. Base every field on the transcript; "
    "redacted values appear as [REDACTED ...] and must stay redacted."
)


def prose(min_len: int, max_len: int) -> str:
    """Text that starts with a letter and holds no braces, ``min_len``-``max_len`` long.

    Small models fill a free string with template or JSON debris ("{ {", "{0} {1}") or a run
    of numbers ("10.2.3.4.5"); as a pattern the server's grammar keeps them from starting one,
    and validation refuses it.
    No double quote or backslash either: llama.cpp copies a character class into its grammar
    as is, so one allowing a raw quote would let the model end the JSON string mid-summary."""
    return rf'^[A-Za-z][^{{}}"\\]{{{min_len - 1},{max_len - 1}}}$'


def _output_model(field_names: tuple[str, ...], do_not_call: bool = False) -> type[BaseModel]:
    """CallAnalysis with the campaign's extracted fields as explicit nullable strings.

    Spelling the fields out (rather than a free-form object) lets the server constrain the
    model to exactly these keys.
    """
    fields_model = create_model(  # type: ignore[call-overload]
        "ExtractedFields",
        __config__=ConfigDict(extra="forbid"),
        **{name: (str | None, Field(...)) for name in field_names},
    )
    return create_model(  # type: ignore[call-overload]
        "CallAnalysisOutput",
        __config__=ConfigDict(extra="forbid"),
        # Two or three sentences: a bound small models reach before max_tokens cuts the JSON off.
        summary=(str, Field(min_length=10, max_length=300, pattern=prose(10, 300))),
        # The bound lives in the pattern: llama.cpp's grammar ignores maxLength next to a pattern.
        disposition=(str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]{1,40}$")),
        sentiment=(Sentiment, ...),
        customer_intent=(str, Field(min_length=3, max_length=120, pattern=prose(3, 120))),
        action_items=(list[Annotated[str, Field(max_length=200)]], Field(max_length=5)),
        follow_up_needed=(bool, ...),
        goal_achieved=(bool | None, ...),
        extracted_fields=(fields_model, ...),
        **({"do_not_call_requested": (bool, ...)} if do_not_call else {}),
    )


def output_schema(field_names: tuple[str, ...] = (), do_not_call: bool = False) -> dict[str, Any]:
    return _output_model(field_names, do_not_call).model_json_schema()


_WORD_RE = re.compile(r"[a-z0-9']+")
# What the schema and the prompt say about a field, and placeholder words: a small model that
# echoes them has written no analysis.
_TEMPLATE_TEXT = tuple(
    text.lower()
    for text in (
        *(f.description or "" for f in CallAnalysis.model_fields.values()),
        *re.split(r"(?<=[.;]) ", SYSTEM_PROMPT),
        "what happened on the call",
        "what the caller wanted",
    )
    if len(text) >= 12
)
_PLACEHOLDERS = frozenset(
    {"string", "summary", "text", "none", "null", "n/a", "na", "unknown", "lorem ipsum", "example"}
)


def degenerate_reason(field: str, text: str, min_words: int) -> str | None:
    """Why ``text`` is no prose an analyst can use (None when it is): too few words, a word or
    phrase said over and over ("no, no, no!"), or the schema's or prompt's own words copied back.
    The server's grammar cannot see any of these; validation refuses them, so they are retried
    and, if they persist, stored as a failed analysis, never shown as a summary."""
    lowered = text.strip().lower()
    words = _WORD_RE.findall(lowered)
    if lowered.strip(" .!?") in _PLACEHOLDERS:
        return f"{field} is a placeholder ({text.strip()!r})"
    if len(words) < min_words:
        return f"{field} has {len(words)} word(s), fewer than {min_words}"
    spoken = [w for w in words if not w.isdigit()]  # digit groups ("4111 1111 ...") are no repetition
    for n in (1, 2, 3):  # the same word or phrase three times in a row
        grams = [tuple(spoken[i : i + n]) for i in range(len(spoken) - n + 1)]
        for i in range(len(grams) - 2 * n):
            if grams[i] == grams[i + n] == grams[i + 2 * n]:
                return f"{field} repeats {' '.join(grams[i])!r}"
    if len(spoken) >= 8 and len(set(spoken)) / len(spoken) < 0.45:
        return f"{field} repeats itself ({len(set(spoken))} distinct of {len(spoken)} words)"
    for template in _TEMPLATE_TEXT:
        if template.strip(" .") in lowered:
            return f"{field} copies the instructions ({template.strip(' .')!r})"
    return None


def parse_analysis(raw: str | None, field_names: tuple[str, ...] = (), do_not_call: bool = False) -> CallAnalysis:
    """Validate the model's raw output; raises ValueError saying what was wrong."""
    if not raw or not raw.strip():
        raise ValueError("model returned no content")
    try:
        # strict=False: a raw newline inside a string is harmless (small models emit them).
        data = json.loads(raw, strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"model output is not a valid CallAnalysis: output: invalid JSON: {exc}") from None
    try:
        parsed = _output_model(field_names, do_not_call).model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'output'}: {e['msg']}" for e in exc.errors()[:5])
        raise ValueError(f"model output is not a valid CallAnalysis: {errors}") from None
    problems = [
        degenerate_reason("summary", parsed.summary, 4),  # type: ignore[attr-defined]
        degenerate_reason("customer_intent", parsed.customer_intent, 2),  # type: ignore[attr-defined]
        *(degenerate_reason("action_items", item, 2) for item in parsed.action_items),  # type: ignore[attr-defined]
    ]
    if found := [p for p in problems if p]:
        raise ValueError(f"model output is not a usable CallAnalysis: {'; '.join(found)}")
    return CallAnalysis.model_validate(parsed.model_dump(mode="json"))


def build_messages(
    transcript_text: str, goal: str | None, field_names: tuple[str, ...], do_not_call: bool = False
) -> list[dict[str, str]]:
    lines = [f"Campaign goal: {goal}" if goal else "Campaign goal: none (set goal_achieved to null)."]
    if field_names:
        lines.append("Extract these fields (null when not mentioned): " + ", ".join(field_names) + ".")
    if do_not_call:
        lines.append(
            "Set do_not_call_requested to true if the caller asked, in any words, not to be called or "
            "contacted again; otherwise false."
        )
    lines.append("Transcript:")
    lines.append(transcript_text)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


class CallLLM(dg.ConfigurableResource):
    """An OpenAI-compatible chat endpoint: vLLM on the cluster, llama.cpp's server locally; and
    whether it writes the analyses at all (``analyser``), or the extractive analyser stands in
    when its output is refused (``extractive_fallback``)."""

    base_url: str = Field(description="e.g. http://vllm:8000/v1 or http://127.0.0.1:8081/v1")
    model: str = Field(description="served model name")
    api_key: str = "not-needed"
    structured_output: StructuredOutput = StructuredOutput.JSON_SCHEMA
    max_attempts: int = Field(3, ge=1, description="tries per call before the analysis is recorded as failed")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay after a transient error; doubles")
    timeout_s: float = 120.0
    max_tokens: int = 700
    temperature: float = 0.0
    reads_do_not_call: bool = Field(
        True,
        description="ask the model whether the caller asked not to be called (post-call's second reading after "
        "the rules); off where the model is too small to read it (its answer would suppress numbers at random)",
    )
    analyser: Analyser = Field(
        Analyser.LLM,
        description="who writes the analyses: the model, or the extractive analyser (no model: the call's own "
        "redacted sentences and rules, labelled 'extractive'), where the model's analyses are no use to an analyst",
    )
    extractive_fallback: bool = Field(
        False,
        description="when the model's output is still refused after max_attempts, store the extractive analysis "
        "(labelled 'extractive', the refusal kept as the record's analysis_error) instead of none",
    )

    def client(self) -> OpenAI:
        # Retries are ours (validation failures must be retried too), so the client's are off.
        return OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0)

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.structured_output is StructuredOutput.JSON_OBJECT_SCHEMA:
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "call_analysis", "schema": schema, "strict": True}}

    def analyze(
        self,
        transcript_text: str,
        goal: str | None = None,
        fields: tuple[str, ...] = (),
        client: OpenAI | None = None,
    ) -> AnalysisResult:
        """Analyse one redacted transcript against its campaign's goal and extracted fields
        (callcenter/campaign.py; none for inbound calls). Raises AnalysisFailed after ``max_attempts``."""
        schema = output_schema(fields, self.reads_do_not_call)
        messages = build_messages(transcript_text, goal, fields, self.reads_do_not_call)
        client = client or self.client()
        started = time.perf_counter()
        last_reason = "not attempted"
        transient = False
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    response_format=self._response_format(schema),  # type: ignore[arg-type]
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                )
            except (APIConnectionError, APITimeoutError) as exc:
                last_reason = f"LLM endpoint unreachable at {self.base_url}: {type(exc).__name__}"
                transient = True
            except APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code != 429:
                    # A request the server rejects will be rejected again: no point retrying.
                    raise AnalysisFailed(
                        f"LLM rejected the request ({exc.status_code}): {exc.message}", attempt
                    ) from None
                last_reason = f"LLM server error {exc.status_code}"
                transient = True
            else:
                choice = response.choices[0]
                try:
                    analysis = parse_analysis(choice.message.content, fields, self.reads_do_not_call)
                except ValueError as exc:
                    finish = choice.finish_reason
                    last_reason = f"{exc}" + (" (output cut off at max_tokens)" if finish == "length" else "")
                    transient = False
                    continue  # invalid output: ask again straight away
                analysis = analysis.model_copy(update={"analyser": llm_analyser(self.model)})
                return AnalysisResult(analysis, attempt, time.perf_counter() - started)
            if attempt < self.max_attempts:
                time.sleep(delay)
                delay *= 2
        raise AnalysisFailed(
            f"{last_reason} (after {self.max_attempts} attempts)",
            self.max_attempts,
            transient,
            seconds=time.perf_counter() - started,
        )


def redact_analysis(analysis: CallAnalysis, policy: RedactionPolicy | None = None) -> CallAnalysis:
    """The analysis with its text redacted again before it is stored.

    The model only saw a redacted transcript, but redaction can miss a number the model then
    copies into its summary, or the model can write one back in another form ("4111-1111-...",
    a bare "731" under ``card_cvv``). Extracted fields are redacted with their name as context:
    a bare "12/28" means nothing, under ``card_expiry`` it is an expiry date.
    """
    policy = policy or RedactionPolicy()

    def field_value(name: str, value: Any) -> Any:
        if isinstance(value, str):
            return redact_value(name, value, policy)
        if isinstance(value, list):
            return [field_value(name, v) for v in value]
        if isinstance(value, dict):
            return {k: field_value(f"{name} {k}", v) for k, v in value.items()}
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = redact_value(name, str(value), policy)
            return value if text == str(value) else text
        return value

    return analysis.model_copy(
        update={
            "summary": redact(analysis.summary, policy).text,
            "customer_intent": redact(analysis.customer_intent, policy).text,
            "disposition": redact(analysis.disposition, policy).text,
            "action_items": [redact(item, policy).text for item in analysis.action_items],
            "extracted_fields": {k: field_value(k, v) for k, v in analysis.extracted_fields.items()},
        }
    )


def analyse_call(
    call_llm: CallLLM,
    call_id: str,
    transcript: Sequence[Turn],
    goal: str | None,
    fields: tuple[str, ...],
    policy: RedactionPolicy,
    client: OpenAI | None = None,
) -> AnalyzedCall:
    """One call's analysis as post-call stores it, from its redacted transcript: the model's, or the
    extractive analyser's where ``call_llm.analyser`` says so or where it stands in for a refused
    one (``extractive_fallback``, the refusal kept as the error); redacted again either way.
    Raises AnalysisFailed when the endpoint is down (transient: the step is retried later)."""
    started = time.perf_counter()
    if call_llm.analyser is Analyser.EXTRACTIVE:
        analysis = redact_analysis(extractive_analysis(transcript, goal, fields), policy)
        return AnalyzedCall(call_id, AnalysisStatus.OK, analysis=analysis, seconds=time.perf_counter() - started)
    text = "\n".join(f"{s.speaker.value}: {s.text}" for s in transcript)
    try:
        result = call_llm.analyze(text, goal, fields, client=client)
    except AnalysisFailed as exc:
        if exc.transient:
            raise
        # A server's error message may quote the prompt back: the reason is stored redacted.
        reason = redact(exc.reason, policy).text
        if not call_llm.extractive_fallback:
            return AnalyzedCall(
                call_id, AnalysisStatus.FAILED, error=reason, attempts=exc.attempts, seconds=exc.seconds
            )
        return AnalyzedCall(
            call_id,
            AnalysisStatus.OK,
            analysis=redact_analysis(extractive_analysis(transcript, goal, fields), policy),
            error=f"the model's analysis was refused: {reason}",
            attempts=exc.attempts,
            seconds=time.perf_counter() - started,
        )
    return AnalyzedCall(
        call_id,
        AnalysisStatus.OK,
        analysis=redact_analysis(result.analysis, policy),
        attempts=result.attempts,
        seconds=result.seconds,
    )


def describe_schema() -> str:
    """The analysis schema as pretty JSON (docs, debugging)."""
    return json.dumps(output_schema(), indent=2)
