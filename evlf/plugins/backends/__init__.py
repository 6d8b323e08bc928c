"""Built-in plugin: the model backends, one module each, each registering itself.

`transformers_backend` (a local model directory), `openai_backend` (any
OpenAI-compatible server), `tiny` (a tiny random model built offline) and
`demo` (the shipped demo model). What they share: `adapter` (messages in,
replies parsed, one repair turn), `families` (what differs between VLM
families), `processors`, `tiny_models`, `constrained` (llguidance decoding).
Registering a backend class imports no model library; torch and
transformers load when a backend is built.
"""
