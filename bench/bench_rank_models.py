"""tl.rank_models end to end: the first call (forward passes, banks written) against the second on the same
cache_dir (no forward pass), offline, on tiny models built here.

    python bench/bench_rank_models.py            # 5 MLPs on digits; 2 tiny BERTs on 2000 sentences if transformers
    TL_BENCH_THREADS=1 python bench/bench_rank_models.py

Before timing it checks: the second call ran no forward pass and gives the same values, and the order equals
knn_loo computed by hand on the MLPs' penultimate features. Prints wall-clock seconds per call and the
Ranking's own split (extraction, scoring).
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import torch

import transferlab as tl


def _mlps():
    out = {}
    for seed, width in ((0, 8), (1, 16), (2, 32), (3, 64), (4, 128)):
        torch.manual_seed(seed)
        out[f"mlp{width}"] = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(),
                                                 torch.nn.Linear(width, width), torch.nn.ReLU(),
                                                 torch.nn.Linear(width, 10))
    return out


def _berts(root):
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "plot", "actor", "was",
             "very", "not", "good", "bad", "great", "awful"]
    with open(os.path.join(root, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    paths = []
    for seed, (hidden, layers) in enumerate(((64, 4), (128, 6))):
        torch.manual_seed(seed)
        cfg = BertConfig(vocab_size=len(words), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                         intermediate_size=4 * hidden, max_position_embeddings=64)
        path = os.path.join(root, f"bert{seed}")
        BertModel(cfg).save_pretrained(path)
        BertTokenizer(os.path.join(root, "vocab.txt")).save_pretrained(path)
        paths.append(path)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=2000)
    texts = [" ".join(list(rng.choice(words[5:14], size=6)) + [words[14 + c]]) for c in y]
    return paths, (texts, y)


def _twice(label, models, data, calls, **kw):
    """Two calls on one fresh cache_dir; ``calls`` grows by one per forward pass (hooks set by the caller)."""
    with tempfile.TemporaryDirectory() as cache:
        calls.clear()
        t0 = time.perf_counter()
        first = tl.rank_models(models, data, cache_dir=cache, progress=False, **kw)
        t1 = time.perf_counter()
        n_first = len(calls)
        second = tl.rank_models(models, data, cache_dir=cache, progress=False, **kw)
        t2 = time.perf_counter()
    assert n_first > 0 and len(calls) == n_first, "the cached call ran a forward pass"
    assert second.values == first.values, "the cached call gave other values"
    extract_s = sum(first.extraction_seconds.values())
    score_s = sum(sum(v.values()) for v in first.seconds.values())
    print(f"{label}: first call {t1 - t0:.2f} s ({n_first} forward passes; extraction {extract_s:.2f} s, "
          f"scoring {score_s:.2f} s), second call {t2 - t1:.2f} s (0 forward passes)")
    return first


def main() -> None:
    if os.environ.get("TL_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["TL_BENCH_THREADS"]))
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    models, calls = _mlps(), []
    for m in models.values():
        m.register_forward_pre_hook(lambda mod, inp: calls.append(1))
    r = _twice("5 MLPs x digits (1797 rows)", models, (x, y), calls, batch_size=128)
    with torch.no_grad():
        knn = {n: tl.knn_loo(m[:-1](torch.as_tensor(x, dtype=torch.float32)).numpy(), y) for n, m in models.items()}
    assert list(r.models) == sorted(knn, key=lambda n: (-knn[n], n)), "order differs from knn_loo by hand"
    print(r)
    try:
        import transformers
    except ImportError:
        print("transformers not installed: BERT part skipped")
        return
    with tempfile.TemporaryDirectory() as root:
        paths, text_data = _berts(root)
        forward = transformers.BertModel.forward
        calls = []
        transformers.BertModel.forward = lambda self, *a, **k: calls.append(1) or forward(self, *a, **k)
        try:
            for layers in ("last", "mean", "best"):
                r = _twice(f"2 tiny BERTs x 2000 sentences, layers={layers}", paths, text_data, calls,
                           layers=layers, batch_size=64)
            print(r)
        finally:
            transformers.BertModel.forward = forward


if __name__ == "__main__":
    main()
