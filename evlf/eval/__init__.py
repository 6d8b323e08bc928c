"""Evaluation: datasets, the paper's metrics, graph comparison.

- `dataset`: the JSONL case format and a folder-of-images loader
- `metrics`, `scoring`, `aggregate`, `compare`: accuracy, macro-F1, mIoU, Acc@0.5,
  closed-VQA exact match; per modality/specialty; bootstrap CIs; paired tests
- `runner`, `harness`, `call_cache`, `summary`, `plots`: `evlf eval`
- `lesions`: the seeded offline lesion benchmark (`lesions-train`, `lesions-test`)

Modules import scikit-learn, scipy and matplotlib only when they compute.
"""
