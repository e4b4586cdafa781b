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
