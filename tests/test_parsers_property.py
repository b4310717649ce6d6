"""Property tests: the parsers that read untrusted text (device ids, challenges, embed tokens, embed start
times, moderation folding) answer for every input, never raise anything but their own refusal."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.interaction import devices, proof
from streaming.interaction.textfold import flood_key, fold, mask_words
from syndication.embed import tokens
from syndication.embed.pages import _seconds

KEY = b"property-key"
TEXT = st.text(max_size=80)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_device_ids_parse_or_refuse(text: str) -> None:
    assert devices.parse(KEY, text) is None or text.startswith("d2.")
    assert devices.parse(KEY, "d2." + text) is None or text.isascii()


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT)
def test_challenges_and_nonces(token: str, nonce: str) -> None:
    try:
        proof.read(KEY, token, 1000.0, 120)
    except proof.ProofError:
        pass
    assert proof.solved(token, nonce, 8) in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), TEXT)
def test_embed_tokens(asset_id: str, token: str) -> None:
    assert tokens.valid(KEY, asset_id, token, 1000.0) in (True, False)
    good = tokens.mint(KEY, "asset1", 2000)
    assert tokens.valid(KEY, "asset1", good, 1000.0) and not tokens.valid(KEY, "asset2", good, 1000.0)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_embed_start_is_always_a_finite_non_negative_number(text: str) -> None:
    value = _seconds(text)
    assert math.isfinite(value) and value >= 0


@settings(max_examples=300, deadline=None)
@given(TEXT, st.lists(st.text(max_size=10), max_size=3))
def test_folding_is_total_and_masking_keeps_length(text: str, words: list[str]) -> None:
    assert isinstance(fold(text), str) and isinstance(flood_key(text), str)
    assert len(mask_words(text, words)) == len(text)
