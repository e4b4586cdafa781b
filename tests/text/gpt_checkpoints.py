"""A small random GPT-2 with a real byte-level BPE tokenizer, made offline."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a journey of a thousand miles begins with a single step",
    "to be or not to be, that is the question",
    "all that glitters is not gold; fortune favours the bold",
    "the coffee was fresh and the tea was stale",
] * 20


def make_gpt2(folder: Path, *, hidden: int = 48, layers: int = 2, heads: int = 3, positions: int = 128,
              seed: int = 0):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.save_pretrained(str(folder))
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=heads,
                        n_positions=positions, bos_token_id=eos, eos_token_id=eos)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # sharper distributions than init so that argmax is well separated
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
        model.transformer.wte.weight.mul_(8)
    model.save_pretrained(str(folder))
    return model, tokenizer
