"""BERT, RoBERTa and DistilBERT converted into the shared backbone equal transformers
(fp32, max abs difference <= 1e-4) for every head, at small random configs."""

from __future__ import annotations

import pytest
import torch

from hub.modeling import load_model

HEADS = ["Model", "ForSequenceClassification", "ForTokenClassification", "ForMaskedLM"]


def make(model_type: str, head: str, folder, heads: int = 3, hidden: int = 36):
    import transformers

    torch.manual_seed(0)
    if model_type == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=97, dim=hidden, n_layers=2, n_heads=heads,
                                               hidden_dim=50, max_position_embeddings=40, num_labels=5)
    else:
        cls = transformers.BertConfig if model_type == "bert" else transformers.RobertaConfig
        config = cls(vocab_size=97, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=heads,
                     intermediate_size=50, max_position_embeddings=40, num_labels=5,
                     type_vocab_size=2 if model_type == "bert" else 1)
    prefix = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert"}[model_type]
    model = getattr(transformers, prefix + head)(config).eval()
    with torch.no_grad():  # move norms and biases off their defaults so nothing passes by symmetry
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(folder))
    return model


def inputs(pad: int):
    torch.manual_seed(1)
    ids = torch.randint(5, 97, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = pad
    return ids, mask


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
@pytest.mark.parametrize("head", HEADS)
def test_outputs_equal_transformers(tmp_path, model_type, head):
    reference = make(model_type, head, tmp_path)
    loaded = load_model(tmp_path, device="cpu")
    assert loaded.converted_from == f"transformers:{model_type}"
    ids, mask = inputs(reference.config.pad_token_id)
    with torch.no_grad():
        theirs = reference(input_ids=ids, attention_mask=mask)
        ours = loaded.module(ids, mask)
    if head == "Model":
        expected, got = theirs.last_hidden_state, ours
    else:
        expected, got = theirs.logits, ours["logits"]
    assert got.shape == expected.shape
    if got.ndim == 3:  # per-token outputs: compare real tokens only
        expected, got = expected[mask.bool()], got[mask.bool()]
    assert (got - expected).abs().max().item() <= 1e-4
    if head in ("ForSequenceClassification", "ForTokenClassification"):
        assert loaded.module.labels == [reference.config.id2label[i] for i in range(5)]


def test_masked_lm_output_projection_is_tied(tmp_path):
    make("bert", "ForMaskedLM", tmp_path)
    model = load_model(tmp_path).module
    assert model.head.embedding is model.encoder.embeddings.tokens
    assert not any(name.endswith("decoder.weight") for name in model.state_dict())


def test_unknown_architecture_names_the_supported_ones(tmp_path):
    import transformers

    transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32)).save_pretrained(str(tmp_path))
    with pytest.raises(LookupError, match="gpt_neox.*bert.*distilbert.*roberta"):
        load_model(tmp_path)
