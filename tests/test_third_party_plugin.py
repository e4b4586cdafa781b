"""The example third-party plugin (examples/third_party_plugin) once pip-installed: found
through its entry point like any other package, a non-builtin plugin, ``text-stats`` works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip(
    "hub_textstats",
    reason="the example plugin is not installed; run `pip install -e examples/third_party_plugin`",
)

import hub  # noqa: E402
from hub.cli import main  # noqa: E402
from hub.errors import InputTypeError, ModelLoadError  # noqa: E402
from hub.plugins import get_plugin_manager  # noqa: E402


@pytest.fixture
def stats():
    return hub.load("text-stats", device="cpu")


def test_found_through_its_entry_point_as_a_third_party_plugin():
    info = next(p for p in get_plugin_manager().plugins if p.name == "textstats")
    assert (info.status, info.builtin, info.module, info.distribution) == (
        "loaded", False, "hub_textstats.plugin", "hub-plugin-textstats")
    registry = hub.get_registry()
    assert registry.task("text-stats").plugin == "textstats"
    assert registry.task("text-statistics").name == "text-stats"
    entry = registry.model("textstats-basic")
    assert entry.source == "package:hub_textstats/model" and entry.origin == "plugin textstats"


def test_counts(stats):
    result = stats("Hello world. How are you?")
    assert result == {"words": 5, "characters": 25, "sentences": 2, "avg_word_length": 3.8,
                      "top_words": ["hello", "world", "how"]}
    assert stats.metadata["model_name"] == "textstats-basic"


def test_batches_keep_order_and_edge_cases(stats):
    texts = ["Wait... what?!", "", "no punctuation at all", "The the THE cat. The end"]
    results = stats(texts, batch_size=2)
    assert [r["words"] for r in results] == [2, 0, 4, 6]
    assert [r["sentences"] for r in results] == [2, 0, 1, 2]
    assert [r["characters"] for r in results] == [len(t) for t in texts]
    assert results[1]["avg_word_length"] == 0.0 and results[1]["top_words"] == []
    assert results[3]["top_words"][0] == "the"  # lower-cased by the shipped options
    assert stats(texts[3], top_words=1)["top_words"] == ["the"]
    with pytest.raises(InputTypeError, match="input 1 is a int"):
        stats(["fine", 3])


def test_save_and_reload_options(stats, tmp_path):
    stats.options["lowercase"] = False
    folder = stats.save(tmp_path / "stats-model")
    assert json.loads((folder / "config.json").read_text())["lowercase"] is False
    again = hub.load("text-stats", model=str(folder), device="cpu")
    assert again("The the")["top_words"] == ["The", "the"]
    (folder / "config.json").write_text('{"architecture": "text-stats", "colour": 1}')
    with pytest.raises(ModelLoadError, match="unknown option 'colour'"):
        hub.load("text-stats", model=str(folder), device="cpu")


def test_cli_shows_a_non_builtin_plugin_and_predicts(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = next(p for p in data["plugins"] if p["name"] == "textstats")
    assert row["builtin"] is False and row["status"] == "loaded" and row["tasks"] == ["text-stats"]
    assert main(["plugins"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["textstats"])
    assert line.split()[1:4] == ["loaded", "no", "hub-plugin-textstats"]

    assert main(["predict", "text-stats", "One. Two!", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["sentences"] == 2


def test_model_folder_ships_in_the_package():
    import hub_textstats

    assert (Path(hub_textstats.__file__).parent / "model" / "config.json").is_file()
