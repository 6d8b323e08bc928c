"""The EVLF training recipe: JSONL cases -> chat examples -> SFT (TRL) -> GRPO with rule-based rewards.

Heavy libraries (torch, transformers, trl, peft, datasets) are imported inside
the modules that need them, so `import evlf.training` stays cheap.
"""
