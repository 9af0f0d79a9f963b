"""The automatic judge (control/services/judge.py) against a stand-in OpenAI-compatible
endpoint on a localhost port (tests/openai_stand_in.py), through the real ``openai`` client:
both orders and the position bias they cancel, ties, the client's own retries of a 429,
replies that hold no verdict, the API key kept out of every text, the win rate, bounds, and
when the judge counts as configured."""
from __future__ import annotations

import json
import socket
import time
import traceback

import pytest

from control.config import from_env
from control.services.judge import (
    MAX_ITEMS, MAX_REASON_CHARS, MAX_TEXT_CHARS, REASK, SEED, JudgeError, JudgeItem,
    JudgeSettings, judge_pairs,
)
from shared.evaluation.statistics import win_rate

pytest.importorskip("werkzeug")
from openai_stand_in import Error, OpenAIStandIn, Raw, rate_limited, verdict  # noqa: E402

KEY = "sk-judge-secret-4f1c9a"
EMPATHY = "I can hear how stressful this is"      # only the adapter's answers say it


def items(n: int = 3, suite: str = "emotional_intelligence") -> list[JudgeItem]:
    return [JudgeItem(id=f"item-{i}", suite=suite, category="anxiety",
                      prompt=f"Client {i}: the market dropped and I'm scared about my pension.",
                      base_answer=f"Markets fluctuate. Keep your allocation. ({i})",
                      adapter_answer=f"{EMPATHY}. Let's look at your pension together. ({i})",
                      reference="Acknowledge the fear, then explain the long horizon.")
            for i in range(n)]


def settings(judge: OpenAIStandIn, **overrides) -> JudgeSettings:
    values = dict(base_url=judge.url, model="judge-model", api_key=KEY, max_retries=2,
                  timeout_seconds=5, concurrency=1)
    return JudgeSettings(**{**values, **overrides})


def prefers(marker: str):
    """A judge that picks whichever response contains ``marker``."""
    def reply(request):
        a, b = request.section("response_a"), request.section("response_b")
        return verdict("A" if marker in a and marker not in b
                       else "B" if marker in b and marker not in a else "tie", f"has {marker!r}")
    return reply


def requests_for(judge: OpenAIStandIn, item: JudgeItem):
    return [r for r in judge.requests if item.prompt in r.text]


# ---------------------------------------------------------------------- both orders

def test_it_turns_a_judge_that_always_picks_response_a_into_ties():
    with OpenAIStandIn(lambda request: verdict("A")) as judge:
        report = judge_pairs(items(), settings=settings(judge))
    assert [i.verdict for i in report.items] == ["tie", "tie", "tie"]
    assert report.counts == {"win": 0, "tie": 3, "loss": 0, "invalid": 0}
    first = report.items[0].orders
    assert [(o.order, o.winner, o.preferred) for o in first] == [
        ("base_first", "A", "base"), ("adapter_first", "A", "adapter")]


def test_it_counts_wins_when_the_judge_prefers_the_adapters_answer_in_both_orders():
    with OpenAIStandIn(prefers(EMPATHY)) as judge:
        report = judge_pairs(items(), settings=settings(judge))
        seen = [(r.section("response_a"), r.section("response_b")) for r in judge.requests]
    assert report.counts == {"win": 3, "tie": 0, "loss": 0, "invalid": 0}
    assert report.win_rate["rate"] == 1.0
    # each item was shown base-first, then adapter-first
    assert [EMPATHY in b for _, b in seen] == [True, False] * 3
    doc = report.to_dict()
    assert doc["judge_is_a_model"] is True
    assert doc["note"] == "Scored by an automatic judge (judge-model), a model, not people."
    assert doc["items"][0]["orders"][0]["reason"] == f"has {EMPATHY!r}"
    assert json.loads(json.dumps(doc)) == doc


def test_it_counts_losses_when_the_judge_prefers_the_base_answer():
    with OpenAIStandIn(prefers("Markets fluctuate")) as judge:
        report = judge_pairs(items(), settings=settings(judge))
    assert [i.verdict for i in report.items] == ["loss"] * 3
    assert report.win_rate["rate"] == 0.0


def test_it_counts_ties_when_the_judge_calls_it_a_tie():
    with OpenAIStandIn(lambda request: verdict("tie", "both kind")) as judge:
        report = judge_pairs(items(), settings=settings(judge))
    assert report.counts == {"win": 0, "tie": 3, "loss": 0, "invalid": 0}
    assert report.win_rate["rate"] == 0.5


def test_it_asks_deterministically_for_a_json_verdict_on_the_rubric():
    with OpenAIStandIn(lambda request: verdict("tie")) as judge:
        judge_pairs(items(1), settings=settings(judge))
        body = judge.requests[0].body
    assert body["model"] == "judge-model"
    assert (body["temperature"], body["seed"]) == (0, SEED)
    assert body["response_format"] == {"type": "json_object"}
    rubric = body["messages"][0]["content"]
    for word in ("Empathy", "Clarity", "Appropriateness", "financial-planning consultant",
                 "Ignore the answers' length and the order"):
        assert word in rubric
    assert "Acknowledge the fear" in body["messages"][1]["content"]     # the reference


def test_a_verdict_in_a_code_fence_amid_prose_is_read():
    fenced = 'Here is my verdict:\n```json\n{"winner": "B", "reason": "warmer"}\n```'
    with OpenAIStandIn(lambda request: fenced) as judge:
        report = judge_pairs(items(1), settings=settings(judge))
        assert len(judge.requests) == 2                                   # no re-ask
    assert report.items[0].verdict == "tie"          # B, then B again: each side once
    assert [o.reason for o in report.items[0].orders] == ["warmer", "warmer"]


# ---------------------------------------------------------------------- retries and errors

def test_it_lets_the_client_retry_a_429_and_then_judges_the_item():
    with OpenAIStandIn(rate_limited(2, prefers(EMPATHY))) as judge:
        report = judge_pairs(items(1), settings=settings(judge, max_retries=2))
        first_order = judge.requests[:3]
        assert len(judge.requests) == 4               # 3 for the first order, 1 for the second
    assert report.items[0].verdict == "win"
    assert len({json.dumps(r.body, sort_keys=True) for r in first_order}) == 1
    assert [r.headers["x-stainless-retry-count"] for r in first_order] == ["0", "1", "2"]


def test_a_429_that_never_ends_stops_the_call_with_a_judge_error_in_bounded_time():
    with OpenAIStandIn(lambda request: Error(429, {"Retry-After": "0"}, "slow down")) as judge:
        started = time.monotonic()
        with pytest.raises(JudgeError) as raised:
            judge_pairs(cases := items(3), settings=settings(judge, max_retries=1, concurrency=2))
        elapsed = time.monotonic() - started
        first, seen = len(requests_for(judge, cases[0])), len(judge.requests)
    assert raised.value.status == 429
    assert raised.value.host.startswith("127.0.0.1:")
    assert raised.value.host in str(raised.value) and "429" in str(raised.value)
    assert "after 1 retry" in str(raised.value)
    assert first == 2                         # asked, then retried once, by the client
    assert seen <= 2 * 2                      # only the items in flight asked; the third never
    assert elapsed < 10


def test_an_unknown_model_or_path_is_a_judge_error_naming_the_host_and_status():
    with OpenAIStandIn(lambda request: verdict("A")) as judge:
        wrong = settings(judge, base_url=judge.url.removesuffix("/v1"))
        with pytest.raises(JudgeError) as raised:
            judge_pairs(items(1), settings=wrong)
    assert raised.value.status == 404
    assert "404" in str(raised.value) and wrong.host in str(raised.value)
    assert "JUDGE_BASE_URL" in str(raised.value)


def test_an_endpoint_that_refuses_connections_is_a_judge_error_naming_the_host():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]              # closed once the block ends: nobody listens
    gone = JudgeSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key=KEY,
                         max_retries=0, timeout_seconds=2)
    with pytest.raises(JudgeError) as raised:
        judge_pairs(items(1), settings=gone)
    assert raised.value.status is None
    assert f"127.0.0.1:{port}" in str(raised.value) and "could not be reached" in str(raised.value)


@pytest.mark.parametrize("page", [Raw("<html>Sign in to the proxy</html>"),
                                  Raw('{"object": "list", "data": []}', "application/json")])
def test_a_200_that_is_not_a_chat_completion_is_a_judge_error_not_a_verdict(page):
    with OpenAIStandIn(lambda request: page) as judge:
        proxied = settings(judge)
        with pytest.raises(JudgeError, match="not a chat completion") as raised:
            judge_pairs(items(2), settings=proxied)
        assert len(judge.requests) == 1                  # the first answer stopped the call
    assert proxied.host in str(raised.value)


# ---------------------------------------------------------------------- replies without a verdict

def test_a_judge_answering_prose_twice_makes_the_items_invalid_and_counted_apart():
    with OpenAIStandIn(lambda request: "Response A seems more caring to me.") as judge:
        report = judge_pairs(items(2), settings=settings(judge))
        reasked = [r for r in judge.requests if r.last_user_message == REASK]
        assert len(judge.requests) == 8 and len(reasked) == 4   # each order asked once more
    assert report.counts == {"win": 0, "tie": 0, "loss": 0, "invalid": 2}
    assert report.win_rate["n"] == 0 and report.win_rate["rate"] is None
    order = report.items[0].orders[0]
    assert (order.winner, order.asks) == (None, 2)
    assert "Response A seems more caring" in order.reason


def test_a_judge_answering_garbage_only_the_first_time_is_judged():
    def garbage_then_verdict(request):
        return prefers(EMPATHY)(request) if request.last_user_message == REASK else "uh?"
    with OpenAIStandIn(garbage_then_verdict) as judge:
        report = judge_pairs(items(1), settings=settings(judge))
        reask = judge.requests[1].messages
    assert report.items[0].verdict == "win"
    assert [o.asks for o in report.items[0].orders] == [2, 2]
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "user"]
    assert reask[2]["content"] == "uh?"


def test_a_long_reason_is_kept_to_its_limit():
    with OpenAIStandIn(lambda request: verdict("A", "because " * 400)) as judge:
        report = judge_pairs(items(1), settings=settings(judge))
    reasons = [o.reason for o in report.items[0].orders]
    assert all(len(r) <= MAX_REASON_CHARS and r.startswith("because") for r in reasons)


# ---------------------------------------------------------------------- the key

def test_the_key_goes_as_the_bearer_token_and_into_no_report_or_error():
    with OpenAIStandIn(prefers(EMPATHY)) as judge:
        good = settings(judge)
        report = judge_pairs(items(2), settings=good)
        assert {r.headers["authorization"] for r in judge.requests} == {f"Bearer {KEY}"}
    assert KEY not in json.dumps(report.to_dict()) and KEY not in repr(report)
    assert KEY not in repr(good) and KEY not in str(good)

    # a server that echoes the key it refused (as some do) still cannot put it in our error
    echoed = Error(401, message=f"Incorrect API key provided: {KEY}")
    with OpenAIStandIn(lambda request: echoed) as judge:
        with pytest.raises(JudgeError) as raised:
            judge_pairs(items(1), settings=settings(judge))
    text = "".join(traceback.format_exception(raised.value))
    assert raised.value.status == 401 and "JUDGE_API_KEY" in text
    assert KEY not in text


# ---------------------------------------------------------------------- the numbers

def test_the_win_rate_and_interval_are_the_statistics_of_the_counts():
    outcome = {0: "adapter", 1: "adapter", 2: "adapter", 3: "base", 4: "tie", 5: "A", 6: "garbage"}

    def mixed(request):
        n = int(request.section("client_message").split(":")[0].split()[1])
        if outcome[n] in ("A", "tie"):
            return verdict(outcome[n])
        if outcome[n] == "garbage":
            return "no idea"
        return prefers(EMPATHY if outcome[n] == "adapter" else "Markets fluctuate")(request)

    with OpenAIStandIn(mixed) as judge:
        report = judge_pairs(items(7), settings=settings(judge, concurrency=3))
    assert report.counts == {"win": 3, "tie": 2, "loss": 1, "invalid": 1}
    assert report.win_rate == win_rate(3, 2, 1)
    doc = report.to_dict()
    assert doc["win_rate"]["interval"] == win_rate(3, 2, 1)["interval"] is not None
    assert doc["by_suite"]["emotional_intelligence"]["counts"] == report.counts


def test_concurrent_judging_keeps_the_items_order():
    def slow(request):
        n = int(request.section("client_message").split(":")[0].split()[1])
        time.sleep(0.02 * (12 - n) % 0.1)
        return prefers(EMPATHY if n % 2 else "Markets fluctuate")(request)

    with OpenAIStandIn(slow) as judge:
        report = judge_pairs(items(12), settings=settings(judge, concurrency=4))
    assert [i.id for i in report.items] == [f"item-{n}" for n in range(12)]
    assert [i.verdict for i in report.items] == ["loss", "win"] * 6


def test_it_bounds_what_it_sends_and_how_many_items_a_call_takes():
    huge = JudgeItem(id="huge", suite="customer", prompt="p" * 50_000,
                     base_answer="b" * 50_000, adapter_answer="a" * 50_000)
    with OpenAIStandIn(lambda request: verdict("tie")) as judge:
        judge_pairs([huge], settings=settings(judge))
        sent = judge.requests[0].messages[1]["content"]
        assert len(sent) < 3 * MAX_TEXT_CHARS + 500
        with pytest.raises(ValueError, match=f"at most {MAX_ITEMS} items"):
            judge_pairs(items(MAX_ITEMS + 1), settings=settings(judge))
        with pytest.raises(ValueError, match="item-0"):
            judge_pairs(items(1) + items(1), settings=settings(judge))
        assert len(judge.requests) == 2                     # the refused calls sent nothing


# ---------------------------------------------------------------------- configuration

def test_the_judge_is_configured_only_with_both_a_url_and_a_model():
    base = {"SECRET_KEY": "x"}
    url, model = {"JUDGE_BASE_URL": "http://judge:8000/v1"}, {"JUDGE_MODEL": "prometheus-7b"}
    assert not JudgeSettings.configured(from_env(base))
    assert not JudgeSettings.configured(from_env({**base, **url}))
    assert not JudgeSettings.configured(from_env({**base, **model, "JUDGE_BASE_URL": ""}))
    with pytest.raises(JudgeError, match="JUDGE_BASE_URL and JUDGE_MODEL"):
        JudgeSettings.from_config(from_env({**base, **url}))
    config = from_env({**base, **url, **model, "JUDGE_API_KEY": KEY})
    assert JudgeSettings.configured(config)
    judge = JudgeSettings.from_config(config)
    assert (judge.host, judge.model, judge.api_key) == ("judge:8000", "prometheus-7b", KEY)
    assert (judge.max_retries, judge.timeout_seconds, judge.concurrency) == (4, 60.0, 4)


def test_a_bad_setting_is_refused_naming_it():
    config = {"JUDGE_BASE_URL": "judge:8000", "JUDGE_MODEL": "m"}
    with pytest.raises(ValueError, match="JUDGE_BASE_URL='judge:8000' is not an http"):
        JudgeSettings.from_config(config)
    with pytest.raises(ValueError, match="JUDGE_CONCURRENCY=0"):
        JudgeSettings.from_config({**config, "JUDGE_BASE_URL": "http://j/v1",
                                   "JUDGE_CONCURRENCY": 0})
