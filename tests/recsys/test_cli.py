"""``python -m hub_recsys``: split, train, evaluate and recommend from files."""

from __future__ import annotations

import json

from hub_recsys.__main__ import main
from tests.recsys.test_pipeline import cyclic_rows


def test_split_train_evaluate_recommend(tmp_path, capsys):
    data = tmp_path / "ratings.csv"
    data.write_text("userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in cyclic_rows()))
    assert main(["split", str(data), "--out", str(tmp_path / "s")]) == 0
    sizes = json.loads(capsys.readouterr().out)
    assert sizes["test"]["rows"] == 40 and sizes["valid"]["rows"] == 40 and sizes["train"]["rows"] == 320
    assert main(["train", "--arch", "bpr", "--train", str(tmp_path / "s/train.csv"), "--eval",
                 str(tmp_path / "s/valid.csv"), "--output", str(tmp_path / "m"), "--epochs", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--test", str(tmp_path / "s/test.csv"),
                 "--protocol", "sampled", "--negatives", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["users"] == 40 and "10 sampled" in report["protocol"] and 0 <= report["hr@10"] <= 1
    assert main(["recommend", "--model", str(tmp_path / "m"), "u1", "newcomer", "--k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["u1"]["items"]) == 3 and out["newcomer"]["policy"] == "popularity"


def test_errors_are_reported_not_raised(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["split", str(empty), "--out", str(tmp_path / "s")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_hub_predict_runs_the_shipped_default(capsys):
    from hub.cli import main as hub_main

    assert hub_main(["predict", "recommend", "1", "2", "--top-k", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [len(r) for r in results] == [3, 3] and set(results[0][0]) == {"item", "score"}


def test_split_never_replaces_existing_files_or_its_input(tmp_path, capsys):
    data = tmp_path / "ratings.csv"
    data.write_text("userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in cyclic_rows()))
    out = tmp_path / "s"
    out.mkdir()
    (out / "train.csv").write_text("my own train file")
    assert main(["split", str(data), "--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "train.csv").read_text() == "my own train file" and not (out / "test.csv").exists()
    assert main(["split", str(data), "--out", str(out), "--overwrite"]) == 0
    assert (out / "train.csv").read_text().startswith("user,item")
    capsys.readouterr()
    inside = tmp_path / "train.csv"  # the input is itself named like an output
    inside.write_text(data.read_text())
    assert main(["split", str(inside), "--out", str(tmp_path), "--overwrite"]) == 2
    assert "would overwrite the input file" in capsys.readouterr().err
    assert inside.read_text() == data.read_text()


def test_train_checks_its_output_before_training(tmp_path, capsys, monkeypatch):
    import hub

    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setattr(hub, "create", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    assert main(["train", "--arch", "bpr", "--train", "x.csv", "--output", str(tmp_path)]) == 2
    assert "holds files Hub did not write" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").is_file()
