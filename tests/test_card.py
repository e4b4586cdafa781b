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


def test_a_fine_tuned_models_card_survives_load_and_save(tmp_path):
    """hub.load(folder) reads the card's data back, so save(other) writes the same card: base
    model, data, training arguments, per-evaluation table and evaluate() figures (issue 16)."""
    import hub
    from hub.card import read_card_data
    from tests.text.checkpoints import make_bert_classifier

    rows = [{"text": t, "label": label} for t, label in [("the best tea", "great"), ("stale and dull", "other"),
                                                          ("lovely <b>--></b> coffee", "great"), ("awful", "other")]]
    make_bert_classifier(tmp_path / "base", num_labels=2, max_positions=16)
    pipe = hub.load("text-classify", model=str(tmp_path / "base"), device="cpu")
    pipe.fine_tune(rows, eval=rows[:2], labels=["great", "other"], epochs=1, batch_size=2, progress=False,
                   device="cpu", save_checkpoints=False)
    pipe.evaluate(rows)
    first = (pipe.save(tmp_path / "tuned") / "README.md").read_text()
    assert "## Training" in first and "Fine-tuned from" in first and "## Evaluation with `evaluate()`" in first
    reloaded = hub.load("text-classify", model=str(tmp_path / "tuned"), device="cpu")
    assert reloaded.metadata["training"] == read_card_data(tmp_path / "tuned")["training"]
    assert reloaded.metadata["base_model"] == pipe.metadata["base_model"]
    again = (reloaded.save(tmp_path / "copy") / "README.md").read_text()
    assert again == first
    # and once more through a second load (nothing accumulates)
    assert (hub.load("text-classify", model=str(tmp_path / "copy")).save(tmp_path / "copy2") / "README.md"
            ).read_text() == first


def test_card_data_is_invisible_json_and_unreadable_cards_give_nothing(tmp_path):
    from hub.card import read_card_data

    card = render_model_card({"task": "text-classify", "base_model": "x/y", "labels": ["a"],
                              "training": {"verb": "fine_tune", "data": {"file": "a-->b.jsonl"}}})
    comment = card.rstrip().splitlines()[-1]
    assert comment.startswith("<!-- hub-card-data: ") and comment.count("-->") == 1  # the value's '-->' is escaped
    (tmp_path / "README.md").write_text(card)
    assert read_card_data(tmp_path) == {"base_model": "x/y", "training": {"verb": "fine_tune",
                                                                          "data": {"file": "a-->b.jsonl"}}}
    (tmp_path / "README.md").write_text("# someone else's card\n<!-- hub-card-data: {not json -->\n")
    assert read_card_data(tmp_path) == {}
    assert read_card_data(tmp_path / "missing") == {}
