"""Under a JSON Schema even the untrained tiny model always yields an answer that validates."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlf.core.answer import EvlfAnswer, answer_json_schema
from evlf.core.backends.base import GenerationRequest, Turn
from evlf.plugins.backends.constrained import MIN_CONSTRAINED_TOKENS, closed_schema, evlf_grammar, min_budget, think_budget
from evlf.core.output import parse_output

LABELS = st.lists(st.text(alphabet="abcdefghij -", min_size=1, max_size=12), min_size=1, max_size=4, unique=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), labels=st.one_of(st.none(), LABELS), budget=st.integers(16, 400), temperature=st.sampled_from([0.0, 0.7, 1.5]))
def test_constrained_answers_always_validate(tiny_backend, image, seed, labels, budget, temperature):
    schema = answer_json_schema(labels)
    request = GenerationRequest(
        turns=[Turn(role="user", text="Report.", images=[image(40, 32, seed % 7)])],
        max_new_tokens=budget,
        temperature=temperature,
        seed=seed,
        json_schema=schema,
    )
    # a batch of three sampled rows per example: more draws per model call
    for gen in tiny_backend.generate([request] * 3):
        assert gen.error is None, gen.text
        assert not gen.repaired
        assert gen.tokens_out <= max(budget, min_budget(schema))
        assert gen.text.startswith("<think>") and gen.text.endswith("</answer>")
        answer = parse_output(gen.text).answer
        assert isinstance(answer, EvlfAnswer)
        if labels:
            assert answer.diagnosis in labels
            assert all(f.label in labels for f in answer.findings)
        assert len(answer.findings) <= 8
        assert all(f.box is not None and len(f.box) == 4 for f in answer.findings)


def test_schema_objects_are_closed():
    schema = closed_schema({"type": "object", "properties": {"a": {"type": "object", "properties": {}}}})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["a"]["additionalProperties"] is False
    kept = closed_schema({"type": "object", "additionalProperties": True})
    assert kept["additionalProperties"] is True


def test_grammar_bounds_the_think_part():
    grammar = evlf_grammar(answer_json_schema(), think_chars=42)
    assert "{0,42}" in grammar
    assert json.loads(grammar.split("%json", 1)[1])["additionalProperties"] is False
    assert think_budget(150) == 0 and think_budget(1000) == 256
    assert min_budget(answer_json_schema(["a", "a much longer label"])) == MIN_CONSTRAINED_TOKENS + len('"a much longer label"')


def test_packed_masks_follow_llguidance_layout_and_mask_only_constrained_rows():
    import torch

    from evlf.plugins.backends.constrained import apply_bitmask, pack_tokens

    rng = np.random.default_rng(0)
    allowed = rng.random((3, 70)) < 0.4
    bitmask = np.stack([pack_tokens(a) for a in allowed])
    unpacked = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[:, :70].astype(bool)
    assert (unpacked == allowed).all()
    scores = torch.randn(3, 70)
    out = apply_bitmask(scores.clone(), bitmask, [0, 2])
    assert torch.equal(out[1], scores[1])  # a free row stays untouched
    for row in (0, 2):
        assert torch.isinf(out[row][~torch.from_numpy(allowed[row])]).all()
        assert torch.equal(out[row][torch.from_numpy(allowed[row])], scores[row][torch.from_numpy(allowed[row])])


def test_a_schema_is_compiled_once_per_tokenizer_and_each_request_gets_its_own_matcher(tiny_backend) -> None:
    from evlf.core.answer import answer_json_schema
    from evlf.plugins.backends.constrained import GrammarLogitsProcessor

    tok = tiny_backend.grammar_tokenizer()
    schema = answer_json_schema(["normal", "effusion"])
    first, second = (GrammarLogitsProcessor(tok, [schema], 200) for _ in range(2))
    assert sum(1 for g in tok._compiled if '"effusion"' in g) == 1  # one compiled template for the schema
    a, b = first.matchers[0], second.matchers[0]
    assert a is not b
    start = tok.ll.tokenize_str("<think>")
    assert a.consume_tokens(start) and not a.is_error()
    assert b.validate_tokens(start) == len(start) > a.validate_tokens(start)  # the second still starts at the top: untouched by the first's tokens
