"""Tiny models and data for the rank_models tests, built in the test (nothing is downloaded): torch MLPs over
scikit-learn's digits, and randomly initialised BERTs saved to a temporary directory with their own vocabulary,
over synthetic sentences whose label depends on a cue word."""
from __future__ import annotations

import os

import numpy as np

# (seed, hidden width): five MLPs whose digits features differ clearly in quality
MLP_SPECS = ((0, 8), (1, 16), (2, 32), (3, 64), (4, 128))

NEUTRAL = ["the", "a", "movie", "film", "plot", "actor", "was", "very", "really", "not", "and", "it"]
CUES = ["good", "bad", "great", "awful"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)  # float64 (1797, 64): rank_models casts batches to the model's dtype
    return x, y


def mlp(seed: int, width: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                                   torch.nn.ReLU(), torch.nn.Linear(width, 10))


def mlps():
    return {f"mlp{w}-seed{s}": mlp(s, w) for s, w in MLP_SPECS}


def penultimate(model, x) -> np.ndarray:
    """The input of the last nn.Linear, by hand: what extract's "auto" adapter reads."""
    import torch

    with torch.no_grad():
        return model[:-1](torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()


def texts(n: int = 240, seed: int = 0):
    """``n`` sentences of 3-8 neutral words and one cue word; the label is the cue's index."""
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for _ in range(n):
        c = int(rng.integers(0, len(CUES)))
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(3, 9)))) + [CUES[c]]
        rng.shuffle(words)
        out.append(" ".join(words))
        labels.append(c)
    return out, np.array(labels)


def tiny_berts(root) -> list:
    """Two random BERTs (hidden 16 / 2 layers and 24 / 3 layers), each saved with a BertTokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = os.path.join(root, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as f:
        f.write("\n".join(SPECIAL + NEUTRAL + CUES) + "\n")
    paths = []
    for seed, (hidden, layers) in enumerate(((16, 2), (24, 3))):
        path = os.path.join(root, f"bert{seed}")
        config = BertConfig(vocab_size=len(SPECIAL + NEUTRAL + CUES), hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            BertModel(config).save_pretrained(path)
        BertTokenizer(vocab).save_pretrained(path)
        paths.append(path)
    return paths


def hidden_states_by_hand(path, sentences, *, batch_size: int, pooling: str = "mean") -> list:
    """Every hidden state of the model at ``path``, pooled over the non-padding tokens, one (N, H) array per
    state: written from transformers' documented outputs, independently of transferlab."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    per_batch = []
    with torch.inference_mode():
        for s in range(0, len(sentences), batch_size):
            enc = tok(sentences[s:s + batch_size], padding=True, truncation=True, max_length=64, return_tensors="pt")
            states = model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"]
            pooled = []
            for h in states:
                if pooling == "first":
                    pooled.append(h[:, 0])
                elif pooling == "last":
                    pooled.append(h[torch.arange(h.shape[0]), mask.sum(1) - 1])
                else:
                    m = mask.unsqueeze(-1).float()
                    pooled.append((h * m).sum(1) / m.sum(1))
            per_batch.append([p.numpy() for p in pooled])
    return [np.concatenate([b[i] for b in per_batch]) for i in range(len(per_batch[0]))]


def digit_images(n: int = 300):
    """The first ``n`` digits as 8x8 grey PIL images (0..16 scaled to 0..240) and their labels."""
    from PIL import Image

    x, y = digits()
    return [Image.fromarray((row.reshape(8, 8) * 15).astype(np.uint8)) for row in x[:n]], y[:n]


def tiny_vits(root) -> list:
    """Two random ViTs on 8x8 images (4x4 patches, hidden 16, 2 layers), saved without their pooler (loading
    initialises it: rank_models must still find its cache), each with a ViTImageProcessor."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    paths = []
    for seed in range(2):
        path = os.path.join(root, f"vit{seed}")
        config = ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ViTModel(config, add_pooling_layer=False).save_pretrained(path)
        ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(path)
        paths.append(path)
    return paths


def vit_states_by_hand(path, images, *, batch_size: int) -> list:
    """Every hidden state's first ([CLS]) token of the ViT at ``path`` on ``images``, one (N, H) array per state."""
    import torch
    from transformers import AutoImageProcessor, AutoModel

    proc = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    per_batch = []
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            pixels = proc(images=[im.convert("RGB") for im in images[s:s + batch_size]], return_tensors="pt")
            states = model(**pixels, output_hidden_states=True).hidden_states
            per_batch.append([h[:, 0].numpy() for h in states])
    return [np.concatenate([b[i] for b in per_batch]) for i in range(len(per_batch[0]))]


class Terminal:
    """A stand-in stderr that says it is a terminal, so the bars (shown on terminals only) draw."""

    def __init__(self):
        self.parts = []

    def isatty(self):
        return True

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def flush(self):
        pass
