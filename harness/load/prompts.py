"""Synthetic request bodies: prompts drawn from a fixed word list, no datasets.

A prompt of length N is N words; with a word-level tokenizer that is about N
tokens, with a byte-level BPE it is more. The server's ``usage.prompt_tokens``
is recorded per request, so the true count is always known.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from harness.load.spec import Api, LoadSpec

WORDS: tuple[str, ...] = (
    "the", "a", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on", "are",
    "with", "as", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word",
    "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there",
    "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up",
    "other", "about", "out", "many", "then", "them", "these", "so", "some", "her",
    "would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
    "write", "go", "see", "number", "no", "way", "could", "people", "my", "than",
    "first", "water", "been", "call", "who", "oil", "its", "now", "find", "long",
    "down", "day", "did", "get", "come", "made", "may", "part", "over", "new", "sound",
    "take", "only", "little", "work", "know", "place", "year", "live", "me", "back",
    "give", "most", "very", "after", "thing", "our", "just", "name", "good", "sentence",
    "man", "think", "say", "great", "where", "help", "through", "much", "before", "line",
)


@dataclass(frozen=True)
class Plan:
    """One request about to be sent: its id, body and when it was meant to go."""

    index: int
    request_id: str
    body: bytes
    intended: float
    prompt_words: int
    max_tokens: int
    prompt_text: str | None = None


def make_prompt(words: int, rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def request_rng(seed: int, index: int) -> random.Random:
    """The RNG of request ``index``: same seed, same prompt, whatever the scheduling."""
    return random.Random(seed * 1_000_003 + index)


def build_plan(spec: LoadSpec, index: int, request_id: str, intended: float) -> Plan:
    rng = request_rng(spec.seed, index)
    words = spec.prompt_len.sample(rng)
    max_tokens = spec.output_len.sample(rng)
    prompt = make_prompt(words, rng)
    body = json.dumps(request_body(spec, prompt, max_tokens)).encode()
    return Plan(index=index, request_id=request_id, body=body, intended=intended,
                prompt_words=words, max_tokens=max_tokens,
                prompt_text=prompt if spec.record_text else None)


def request_body(spec: LoadSpec, prompt: str, max_tokens: int) -> dict[str, object]:
    """The JSON body of an OpenAI completions / chat completions request."""
    body: dict[str, object] = {"model": spec.model, "max_tokens": max_tokens,
                               "temperature": 0.0, "stream": spec.stream}
    if spec.api is Api.CHAT:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if spec.stream:
        body["stream_options"] = {"include_usage": True}
    if spec.ignore_eos:
        body["ignore_eos"] = True
    return body
