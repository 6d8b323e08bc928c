"""The tokenizer trained for the demo model: merges across spaces shrink repeated prompts, text round-trips."""

from evlf.training.examples import answer_corpus, build_examples, prompt_messages
from evlf.training.tiny_vlm import train_tokenizer


def test_merges_across_spaces_shrink_the_pipeline_prompt_and_round_trip(lesions):
    examples = build_examples(lesions, prompts="pipeline")
    corpus = answer_corpus(examples)
    plain = train_tokenizer(corpus, 2048)
    wide = train_tokenizer(corpus, 2048, merge_across_spaces=True)
    ex = examples[0]
    prompt = wide.apply_chat_template(prompt_messages(ex.system, ex.user, 1), add_generation_prompt=True, tokenize=False)
    assert len(wide(prompt).input_ids) * 5 < len(plain(prompt).input_ids) * 4  # at least a fifth shorter, even on 6 cases
    full = wide(prompt + ex.completion).input_ids
    assert full[: len(wide(prompt).input_ids)] == wide(prompt).input_ids  # the completion starts on a token boundary
    assert wide.decode(wide(ex.completion).input_ids) == ex.completion
    digits = [t for t in wide.convert_ids_to_tokens(wide("[0.25, 0.75]").input_ids) if any(c.isdigit() for c in t)]
    assert all(len(t) == 1 for t in digits)  # coordinates are written digit by digit


def test_constrained_decoding_accepts_the_demo_tokenizers_own_answers(lesions):
    """Each JSON mark its own token: the answer grammar takes the model's preferred tokens one by one."""
    from llguidance import LLMatcher

    from evlf.core.answer import answer_json_schema
    from evlf.plugins.backends.constrained import GrammarTokenizer, evlf_grammar, think_budget

    examples = build_examples(lesions, prompts="pipeline")
    tok = train_tokenizer(answer_corpus(examples), 2048, merge_across_spaces=True, isolate_json=True)
    grammar = GrammarTokenizer(tok, len(tok), [tok.eos_token_id])
    marks = set('{}[]":,<>')
    for ex in examples:
        ids = tok(ex.completion).input_ids
        pieces = [tok.decode([i]) for i in ids]
        assert all(len(p) == 1 or not marks & set(p) for p in pieces)
        matcher = LLMatcher(grammar.ll, evlf_grammar(answer_json_schema(), think_budget(384)), log_level=0)
        assert all(matcher.consume_token(i) for i in ids), ex.completion
        assert matcher.is_accepting()


def test_grammar_processor_keeps_the_schemas_key_order(lesions):
    """The answer's keys in the schema's order (diagnosis first) stay allowed at every step under the default schema."""
    import torch

    from evlf.core.answer import answer_json_schema
    from evlf.plugins.backends.constrained import GrammarLogitsProcessor, GrammarTokenizer

    examples = build_examples(lesions, prompts="pipeline")
    tok = train_tokenizer(answer_corpus(examples), 2048, merge_across_spaces=True, isolate_json=True)
    ids = tok(examples[0].completion).input_ids + [tok.eos_token_id]
    proc = GrammarLogitsProcessor(GrammarTokenizer(tok, len(tok), [tok.eos_token_id]), [answer_json_schema()], 384)
    seq = torch.zeros((1, 3), dtype=torch.long)
    for token in ids:
        scores = proc(seq, torch.zeros((1, len(tok))))
        assert scores[0, token] > float("-inf"), tok.decode(seq[0, 3:].tolist())
        seq = torch.cat([seq, torch.tensor([[token]])], dim=1)
