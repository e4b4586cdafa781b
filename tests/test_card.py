"""Model cards carry the Hugging Face Hub's pipeline tag for every task that has one."""

from __future__ import annotations

import pytest
import yaml

from hub.card import render_model_card


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


@pytest.mark.parametrize("task, tag", [("text-classify", "text-classification"), ("image-classify",
                                       "image-classification"), ("speech-recognize", "automatic-speech-recognition"),
                                      ("text-embed", "feature-extraction")])
def test_pipeline_tag(task, tag):
    front = front_matter(render_model_card({"task": task, "license": "mit", "model_name": "m"}))
    assert front["pipeline_tag"] == tag and front["license"] == "mit" and task in front["tags"]


def test_task_without_hub_counterpart_has_no_tag():
    assert "pipeline_tag" not in front_matter(render_model_card({"task": "recommend"}))


def test_trained_model_card_front_matter_names_hub_repo_ids_only():
    training = {"verb": "fine_tune", "data": {"dataset": "stanfordnlp/imdb", "split": "train", "rows": 25000},
                "eval_data": {"file": "val.jsonl"}, "arguments": {"learning_rate": 5e-5},
                "results": {"eval_accuracy": 0.91}, "history": [{"epoch": 1, "step": 10, "eval_accuracy": 0.91}]}
    card = render_model_card({"task": "text-classify", "base_model": "google-bert/bert-base-uncased",
                              "training": training})
    front = front_matter(card)
    assert front["base_model"] == "google-bert/bert-base-uncased" and front["datasets"] == ["stanfordnlp/imdb"]
    assert ("Fine-tuned from `google-bert/bert-base-uncased` on the dataset `stanfordnlp/imdb`, split `train` "
            "(25,000 rows).") in card
    assert "- Evaluation data: `val.jsonl`" in card and "- learning_rate: 5e-05" in card
    assert "| eval_accuracy | 0.91 |" in card and "| 1 | 10 | 0.91 |" in card
    # a catalogue name or a local folder is named in the text, never as Hub metadata
    for base in ("sentiment-minilm", "/home/me/models/base", "./base"):
        card = render_model_card({"task": "text-classify", "base_model": base, "training": training})
        assert "base_model" not in front_matter(card) and f"Fine-tuned from `{base}`" in card


def test_a_model_trained_from_scratch_says_so():
    card = render_model_card({"task": "text-generate", "training": {"verb": "pretrain", "data": {"list": 240}}})
    assert "Pretrained from scratch on a list of 240 examples." in card and "Fine-tuned" not in card
