"""Small random encoder-decoder checkpoints (BART, mBART, Marian, T5 v1.0 / v1.1) made with
transformers and saved with save_pretrained, each with a real byte-level BPE tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.text.gpt_checkpoints import CORPUS  # the same sentences train the BPE

FAMILIES = ("bart", "mbart", "marian", "t5", "t5v11")


def make_tokenizer(folder: Path, family: str):
    """BPE with BART's special-token layout (<s>=0, <pad>=1, </s>=2, <unk>=3; sources end with
    </s>), T5's (<pad>=0, </s>=1, <unk>=2) or Marian's (</s>=0, <unk>=1, <pad>=2)."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    specials = {"t5": ["<pad>", "</s>", "<unk>"], "t5v11": ["<pad>", "</s>", "<unk>"],
                "marian": ["</s>", "<unk>", "<pad>"]}.get(family, ["<s>", "<pad>", "</s>", "<unk>"])
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=specials)
    eos = bpe.token_to_id("</s>")
    bpe.post_processor = TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)])
    extra = {"bos_token": "<s>"} if "<s>" in specials else {}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                        **extra)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def make_seq2seq(folder: Path, family: str, *, hidden: int = 32, seed: int = 0, **config_overrides):
    """A random ``family`` model + tokenizer saved into ``folder``; returns (model, tokenizer)."""
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        MarianConfig,
        MarianMTModel,
        MBartConfig,
        MBartForConditionalGeneration,
        T5Config,
        T5ForConditionalGeneration,
    )

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(folder, family)
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (("pad", "<pad>"), ("eos", "</s>"))}
    vocab = len(tokenizer)
    torch.manual_seed(seed)
    if family.startswith("t5"):
        v11 = family == "t5v11"
        config = T5Config(vocab_size=vocab, d_model=hidden, d_kv=8 if v11 else hidden // 4, d_ff=2 * hidden,
                          num_layers=2, num_heads=3 if v11 else 4, relative_attention_num_buckets=8,
                          relative_attention_max_distance=20, feed_forward_proj="gated-gelu" if v11 else "relu",
                          tie_word_embeddings=not v11, pad_token_id=ids["pad"], eos_token_id=ids["eos"],
                          decoder_start_token_id=ids["pad"], **config_overrides)
        model = T5ForConditionalGeneration(config)
    else:
        common = dict(vocab_size=vocab, d_model=hidden, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=2 * hidden, decoder_ffn_dim=2 * hidden,
                      max_position_embeddings=128, pad_token_id=ids["pad"], eos_token_id=ids["eos"],
                      forced_eos_token_id=ids["eos"])
        if family == "marian":
            config = MarianConfig(**common, decoder_start_token_id=ids["pad"], scale_embedding=True,
                                  activation_function="swish", **config_overrides)
            model = MarianMTModel(config)
        elif family == "mbart":
            config = MBartConfig(**common, bos_token_id=0, decoder_start_token_id=ids["eos"], scale_embedding=True,
                                 **config_overrides)
            model = MBartForConditionalGeneration(config)
        else:
            config = BartConfig(**common, bos_token_id=0, decoder_start_token_id=ids["eos"], **config_overrides)
            model = BartForConditionalGeneration(config)
    model.eval()
    with torch.no_grad():  # non-trivial norms and biases, sharper distributions than at init
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 0.05))
    model.save_pretrained(str(folder))
    return model, tokenizer


def make_mbart50(folder: Path, *, hidden: int = 32, seed: int = 0):
    """A random mBART-50-style model (``mbart``) with transformers' MBart50Tokenizer: a
    Unigram vocabulary trained on the corpus, then the 52 language codes (``en_XX``,
    ``de_DE``, ...) and ``<mask>``, in fairseq's layout (<s>=0, <pad>=1, </s>=2, <unk>=3);
    sources are ``[src_lang] text </s>``. Returns (model, tokenizer)."""
    import json

    from tokenizers import Tokenizer
    from tokenizers.models import Unigram
    from tokenizers.pre_tokenizers import Metaspace
    from tokenizers.trainers import UnigramTrainer
    from transformers import MBart50Tokenizer, MBartConfig, MBartForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    unigram = Tokenizer(Unigram())
    unigram.pre_tokenizer = Metaspace()
    unigram.train_from_iterator(CORPUS, UnigramTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                       unk_token="<unk>"))
    vocab = [tuple(piece) for piece in json.loads(unigram.to_str())["model"]["vocab"]]
    tokenizer = MBart50Tokenizer(vocab=vocab, src_lang="en_XX")
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = MBartConfig(vocab_size=len(tokenizer), d_model=hidden, encoder_layers=2, decoder_layers=2,
                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * hidden,
                         decoder_ffn_dim=2 * hidden, max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
                         eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2, scale_embedding=True)
    model = MBartForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 0.05))
    model.save_pretrained(str(folder))
    return model, tokenizer


def make_marian_separate(folder: Path, *, hidden: int = 32, seed: int = 0):
    """A random MarianMTModel with separate source and target vocabularies
    (``share_encoder_decoder_embeddings=False``) and transformers' MarianTokenizer with
    ``separate_vocabs=True``: a source SentencePiece model + vocab.json trained on the corpus,
    a target one + target_vocab.json (a different size) trained on the corpus upper-cased
    (</s>=0, <unk>=1, <pad>=2 in both). Needs sentencepiece. Returns (model, tokenizer)."""
    import json

    import sentencepiece
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    work = folder / "spm"
    work.mkdir(exist_ok=True)
    vocabs = {}
    for side, texts, size in (("source", CORPUS, 150), ("target", [t.upper() for t in CORPUS], 40)):
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_prefix=str(work / side), vocab_size=size, model_type="unigram",
            bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0, hard_vocab_limit=False, minloglevel=2)
        spm = sentencepiece.SentencePieceProcessor(model_file=str(work / f"{side}.model"))
        pieces = [spm.id_to_piece(i) for i in range(1, spm.get_piece_size())]
        vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
        for piece in pieces:
            vocab.setdefault(piece, len(vocab))
        vocabs[side] = vocab
        (work / f"{side}.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(str(work / "source.model"), str(work / "target.model"), str(work / "source.json"),
                                target_vocab_file=str(work / "target.json"), separate_vocabs=True)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = MarianConfig(vocab_size=len(vocabs["source"]), decoder_vocab_size=len(vocabs["target"]),
                          share_encoder_decoder_embeddings=False, d_model=hidden, encoder_layers=2, decoder_layers=2,
                          encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * hidden,
                          decoder_ffn_dim=2 * hidden, max_position_embeddings=128, pad_token_id=2, eos_token_id=0,
                          decoder_start_token_id=2, forced_eos_token_id=0, scale_embedding=True,
                          activation_function="swish")
    model = MarianMTModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 0.05))
    model.save_pretrained(str(folder))
    return model, tokenizer
