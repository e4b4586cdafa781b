"""ONNX export (``pipe.export`` / ``hub export``) and the ONNX Runtime backend
(``hub.load(..., backend="onnxruntime")``) on tiny random models of every exported task family:
the export's own parity check, dynamic batch and sequence axes, ONNX Runtime pipelines giving
the torch pipelines' results (labels equal, scores and vectors within 1e-4), ORT's int8, the
refusals (tasks that cannot be exported, half-written folders, a missing extra)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import hub
from hub.errors import InvalidInputError, MissingExtraError, ModelLoadError, NotSupportedError, SaveTargetError

pytest.importorskip("onnxruntime", reason="pip install 'hub-sdk[onnx]' (test extra)")

from hub.export import ExportParityError  # noqa: E402

TEXTS = ["the food was great", "awful stale coffee and not very fresh " * 12, "tea",
         "not very good but tasty and fresh price value", "i love it", "bad bad bad product"]
TOL = 1e-4


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ONNX_CACHE", str(tmp_path / "onnx-cache"))


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory, one_torch_thread):
    from tests.text.checkpoints import make_bert_classifier

    folder = tmp_path_factory.mktemp("bert")
    make_bert_classifier(folder)
    return folder


def _scores_close(a, b):
    """Same labels in the same order, scores within TOL."""
    assert [x["label"] for x in a] == [y["label"] for y in b]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) <= TOL


def _ort(task, folder, **kwargs):
    return hub.load(task, model=str(folder), device="cpu", backend="onnxruntime", **kwargs)


def test_text_classify_export_folder_parity_and_ort_pipeline(bert_folder, tmp_path):
    torch_pipe = hub.load("text-classify", model=str(bert_folder), device="cpu")
    out = torch_pipe.export(tmp_path / "exported")
    files = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "onnx.json", "README.md", "tokenizer.json", ".hub-manifest.json"} <= files
    assert "model.safetensors" not in files  # the graph holds the weights
    info = json.loads((out / "onnx.json").read_text())
    assert [i["name"] for i in info["inputs"]] == ["input_ids", "attention_mask"]
    assert info["inputs"][0]["axes"] == ["batch", "sequence"] and info["outputs"][0]["axes"] == {"0": "batch"}
    assert info["parity"]["max_abs_diff"]["logits"] <= TOL
    # the checked examples cover batch 1 and 5 and lengths other than the traced one
    shapes = [e["input_ids"] for e in info["parity"]["examples"]]
    assert [1, 5] in shapes and any(s[0] == 5 for s in shapes) and len({s[1] for s in shapes}) >= 3
    assert info["preprocessing"]["labels"] == ["class_0", "class_1", "class_2"]

    ort_pipe = _ort("text-classify", out)
    assert ort_pipe.metadata["backend"] == "onnxruntime"
    assert ort_pipe.metadata["providers"] == ["CPUExecutionProvider"]
    assert ort_pipe.metadata["optimization"] == "all" and ort_pipe.metadata["quantization"] is None
    for batch_size in (1, 5):
        expected = torch_pipe(TEXTS, top_k=None, batch_size=batch_size)
        got = ort_pipe(TEXTS, top_k=None, batch_size=batch_size)
        for a, b in zip(expected, got):
            _scores_close(a, b)
            assert a.metadata == b.metadata  # windows of the long text, token counts
    assert got[1].metadata["windows"] > 1  # the long text went window by window through ONNX Runtime
    single = ort_pipe(TEXTS[0])
    assert single["label"] == torch_pipe(TEXTS[0])["label"]


def test_an_int8_computing_pipeline_exports_its_float_weights(bert_folder, tmp_path):
    fp32 = hub.load("text-classify", model=str(bert_folder), device="cpu", quantize=False)
    int8 = hub.load("text-classify", model=str(bert_folder), device="cpu", quantize="int8")
    assert int8.metadata["compute"]["weights"] == "int8"
    out = int8.export(tmp_path / "exported")
    assert int8.metadata["compute"]["weights"] == "int8"  # the pipeline itself still computes in int8
    for a, b in zip(fp32(TEXTS, top_k=None), _ort("text-classify", out)(TEXTS, top_k=None)):
        _scores_close(a, b)  # the graph holds the float weights


def test_graph_has_dynamic_batch_and_sequence_axes(bert_folder, tmp_path):
    import onnxruntime as ort

    pipe = hub.load("text-classify", model=str(bert_folder), device="cpu")
    out = pipe.export(tmp_path / "exported")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for batch, length in ((1, 3), (5, 17), (7, 40)):
        ids = torch.randint(0, 60, (batch, length), generator=generator)
        mask = torch.ones(batch, length, dtype=torch.long)
        mask[-1, length // 3:] = 0  # padding in some, not all, rows
        with torch.no_grad():
            expected = pipe.model(ids, mask)["logits"].numpy()
        got = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        assert got.shape == (batch, 3) and np.abs(got - expected).max() <= TOL


@pytest.mark.parametrize("task", ["token-classify", "fill-mask", "text-embed"])
def test_other_text_tasks_ort_equals_torch(task, bert_folder, tmp_path):
    if task == "fill-mask":
        from tests.text.checkpoints import make_wordpiece_tokenizer

        tokenizer = tmp_path / "tok"
        make_wordpiece_tokenizer(tokenizer)
        torch_pipe = hub.create("fill-mask", config={"num_layers": 2, "hidden_size": 32, "num_heads": 2,
                                                     "max_positions": 64}, tokenizer=str(tokenizer), device="cpu",
                                seed=0)
        texts = ["the food was [MASK]", "i [MASK] it and the tea was [MASK] ."]
    elif task == "token-classify":  # a bare encoder gets a (seeded) tagging head
        encoder = hub.load("text-embed", model=str(bert_folder), device="cpu").save(tmp_path / "encoder")
        torch.manual_seed(0)
        torch_pipe = hub.load(task, model=str(encoder), device="cpu")
        texts = TEXTS
    else:
        torch_pipe = hub.load(task, model=str(bert_folder), device="cpu")
        texts = TEXTS
    out = torch_pipe.export(tmp_path / "exported")
    ort_pipe = _ort(task, out)
    expected, got = torch_pipe(texts, batch_size=2), ort_pipe(texts, batch_size=2)
    if task == "text-embed":
        assert max(float(np.abs(np.array(a) - np.array(b)).max()) for a, b in zip(expected, got)) <= TOL
        assert [a.metadata for a in expected] == [b.metadata for b in got]
        assert json.loads((out / "onnx.json").read_text())["outputs"][0]["name"] == "last_hidden_state"
    elif task == "token-classify":
        for a, b in zip(expected, got):
            assert [(e["entity_group"], e["start"], e["end"]) for e in a] == \
                   [(e["entity_group"], e["start"], e["end"]) for e in b]
            assert all(abs(x["score"] - y["score"]) <= TOL for x, y in zip(a, b))
    else:
        for per_text_a, per_text_b in zip(expected, got):
            several = isinstance(per_text_a[0], list)  # one ranked list per mask when there are several
            for a, b in zip(per_text_a if several else [per_text_a], per_text_b if several else [per_text_b]):
                assert [x["token"] for x in a] == [y["token"] for y in b]
                assert all(abs(x["score"] - y["score"]) <= TOL for x, y in zip(a, b))


class _CountingSession:
    """An ONNX Runtime session recording the input_ids shape of each call."""

    def __init__(self, session):
        self.session, self.shapes = session, []

    def run(self, names, feeds):
        self.shapes.append(tuple(feeds["input_ids"].shape))
        return self.session.run(names, feeds)

    def __getattr__(self, name):
        return getattr(self.session, name)


@pytest.mark.parametrize("task", ["text-classify", "text-embed"])
def test_ort_runs_a_padded_batch_in_length_groups(task, bert_folder, tmp_path):
    """A batch mixing short and long texts runs as groups padded to their own longest (ONNX
    Runtime computes every padded position); answers equal torch's, token outputs re-padded."""
    torch_pipe = hub.load(task, model=str(bert_folder), device="cpu")
    ort_pipe = _ort(task, torch_pipe.export(tmp_path / "exported"))
    runner = getattr(ort_pipe, ort_pipe.runner_attribute)
    counting = runner.session = _CountingSession(runner.session)
    texts = ["tea", "i love it", "awful stale coffee and not very fresh " * 3, "good", "the food was great"]
    expected, got = torch_pipe(texts, batch_size=8), ort_pipe(texts, batch_size=8)
    assert len(counting.shapes) >= 2  # one pipeline batch, several calls
    assert sorted(b for b, _ in counting.shapes) != [len(texts)] and sum(b for b, _ in counting.shapes) == len(texts)
    assert min(t for _, t in counting.shapes) < max(t for _, t in counting.shapes)  # short rows not padded to long
    if task == "text-embed":
        assert max(float(np.abs(np.array(a) - np.array(b)).max()) for a, b in zip(expected, got)) <= TOL
    else:
        for a, b in zip(expected, got):
            assert a["label"] == b["label"] and abs(a["score"] - b["score"]) <= TOL
    # called directly: equal rows run whole; a left-padded batch runs whole (slicing columns
    # off would drop its real tokens); token outputs come back at the batch's length
    ids = torch.randint(5, 60, (4, 12), generator=torch.Generator().manual_seed(0))
    for mask, calls in ((torch.ones(4, 12, dtype=torch.long), 1),
                        (torch.tensor([[0] * 9 + [1] * 3] + [[1] * 12] * 3), 1),
                        (torch.tensor([[1] * 3 + [0] * 9] * 2 + [[1] * 12] * 2), 2)):
        counting.shapes.clear()
        with torch.inference_mode():
            out = runner(ids, mask)
        assert len(counting.shapes) == calls
        tensor = out if isinstance(out, torch.Tensor) else next(iter(out.values()))
        assert tensor.shape[0] == 4 and (task != "text-embed" or tensor.shape[1] == 12)
        if calls == 2:  # the grouped call equals one whole call on the same rows
            runner.groupable = False
            with torch.inference_mode():
                whole = runner(ids, mask)
            runner.groupable = True
            whole = whole if isinstance(whole, torch.Tensor) else next(iter(whole.values()))
            real = mask.bool()
            diff = (tensor - whole)[real] if tensor.dim() == 3 else tensor - whole
            assert float(diff.abs().max()) <= TOL


def test_vision_exports_serve_classify_and_embed(tmp_path):
    cnn = {"timm_model": "resnet10t", "model_args": {"channels": [8, 16, 32, 64], "stem_width": 8, "in_chans": 1},
           "preprocess": {"input_size": [1, 32, 32], "crop_pct": 1.0, "interpolation": "bilinear",
                          "mean": [0.5], "std": [0.5]}, "labels": ["a", "b", "c"]}
    vit = {"img_size": 32, "patch_size": 8, "in_chans": 1, "num_layers": 2, "hidden_size": 32, "num_heads": 2,
           "preprocess": {"crop_pct": 1.0, "interpolation": "bilinear", "mean": [0.5], "std": [0.5]},
           "labels": ["a", "b", "c"]}
    images = [np.random.RandomState(i).randint(0, 255, (40 + i, 50), dtype=np.uint8) for i in range(6)]
    for name, config in (("cnn", cnn), ("vit", vit)):
        torch_pipe = hub.create("image-classify", config=config, seed=0, device="cpu")
        out = torch_pipe.export(tmp_path / name)
        info = json.loads((out / "onnx.json").read_text())
        assert info["preprocessing"]["image"]["input_size"] == [1, 32, 32]
        assert [o["name"] for o in info["outputs"]] == ["logits", "features"]
        for a, b in zip(torch_pipe(images, top_k=None, batch_size=5), _ort("image-classify", out)(images, top_k=None)):
            _scores_close(a, b)
        int8 = _ort("image-classify", out, quantize="int8")  # ORT's int8: convolutions stay float
        assert [len(r) for r in int8(images[:2], top_k=None)] == [3, 3]
        embed = hub.load("image-embed", model=str(out), device="cpu", backend="onnxruntime")
        reference = hub.create("image-embed", config=config, seed=0, device="cpu")
        for a, b in zip(reference(images[:3]), embed(images[:3])):
            assert np.abs(np.array(a) - np.array(b)).max() <= TOL


def test_speech_exports_recognize_and_classify(tmp_path):
    from tests.speech.checkpoints import tone

    backbone = {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "rotary_dim": 16}
    clips = [tone(0.4), tone(1.7, freq=300), tone(1.1, freq=220, seed=3), tone(25.0, freq=500)]
    asr = hub.create("speech-recognize", config={"backbone": backbone}, device="cpu")
    out = asr.export(tmp_path / "asr")
    info = json.loads((out / "onnx.json").read_text())
    assert info["preprocessing"]["sample_rate"] == 16000 and info["optional_inputs"] == ["attention_mask"]
    ort_asr = _ort("speech-recognize", out)
    expected = asr(clips, sampling_rate=16000, return_timestamps="char")
    got = ort_asr(clips, sampling_rate=16000, return_timestamps="char")
    assert got == expected and got[-1].metadata["chunks"] == 2  # long audio chunked and stitched alike
    kws = hub.create("audio-classify", config={"labels": ["low", "high", "noise"], "backbone": backbone},
                     device="cpu")
    ort_kws = _ort("audio-classify", kws.export(tmp_path / "kws"))
    for a, b in zip(kws(clips, sampling_rate=16000, top_k=None), ort_kws(clips, sampling_rate=16000, top_k=None)):
        _scores_close(a, b)


def test_on_the_fly_export_is_cached_by_content(bert_folder, tmp_path, monkeypatch):
    import shutil

    import hub.export

    calls = []
    original = hub.export.export_pipeline
    monkeypatch.setattr(hub.export, "export_pipeline", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = _ort("text-classify", bert_folder)
    second = _ort("text-classify", bert_folder)
    assert len(calls) == 1 and first.metadata["onnx_folder"] == second.metadata["onnx_folder"]
    assert str(tmp_path / "onnx-cache") in first.metadata["onnx_folder"]
    expected = hub.load("text-classify", model=str(bert_folder), device="cpu")(TEXTS, top_k=None)
    for a, b in zip(expected, second(TEXTS, top_k=None)):
        _scores_close(a, b)
    changed = tmp_path / "changed"  # other weights, same path layout: a new export
    shutil.copytree(bert_folder, changed)
    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(changed, seed=1)
    assert _ort("text-classify", changed).metadata["onnx_folder"] != first.metadata["onnx_folder"]
    assert len(calls) == 2


def test_ort_int8_is_close_and_says_so(bert_folder, tmp_path):
    torch_pipe = hub.load("text-embed", model=str(bert_folder), device="cpu")
    out = torch_pipe.export(tmp_path / "exported")
    int8 = _ort("text-embed", out, quantize="int8")
    assert int8.metadata["quantization"] == "int8-dynamic (onnxruntime)"
    for a, b in zip(torch_pipe(TEXTS), int8(TEXTS)):
        a, b = np.array(a), np.array(b)
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.98
    assert not (out / "model.int8.onnx").exists()  # the quantised graph goes to the cache, not the export


def test_ort_int8_rewrite_is_exact_in_float_on_real_tokens(bert_folder, tmp_path):
    """Before quantize_dynamic, Hub spreads outlier columns and zeroes padded rows (hub/ort_int8.py):
    in float that graph computes what the export computes on every real token, padded batches too."""
    import onnx
    import onnxruntime as ort

    from hub.export import session_for
    from hub.ort_int8 import constant_matmuls, probe_ranges, spread_outlier_columns

    torch_pipe = hub.load("text-embed", model=str(bert_folder), device="cpu")
    out = torch_pipe.export(tmp_path / "exported")
    pipe = _ort("text-embed", out)
    runner = pipe.encoder_module
    model = onnx.load(str(out / "model.onnx"))
    ranges, token_rows = probe_ranges(pipe, runner, model, ort, 1)
    assert set(ranges) == {n.input[0] for n in constant_matmuls(model)} and token_rows == set(ranges)
    # a forced split on every probed input (a random tiny model has no real outliers), masking too
    splits = {name: {0: 3, int(np.argmax(found)): 2} for name, found in ranges.items()}
    assert spread_outlier_columns(model, splits, token_rows) == len(constant_matmuls(model))
    assert any(n.name.endswith("/Mask") for n in model.graph.node) and any(n.op_type == "Concat" for n in model.graph.node)
    onnx.checker.check_model(model)
    rewritten = tmp_path / "rewritten.onnx"
    onnx.save(model, str(rewritten))
    plain, spread = session_for(ort, out / "model.onnx", threads=1), session_for(ort, rewritten, threads=1)
    ids = np.random.RandomState(0).randint(5, 90, (3, 11))
    mask = np.ones((3, 11), dtype=np.int64)
    mask[0, 6:], mask[2, 3:] = 0, 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    a, b = plain.run(None, feeds)[0], spread.run(None, feeds)[0]
    real = mask.astype(bool)
    assert np.abs(a[real] - b[real]).max() <= 1e-5  # padded rows differ (zeroed), never read
    int8 = _ort("text-embed", out, quantize="int8")
    assert int8.metadata["int8"]["padded_rows_zeroed"] == len(token_rows)


def test_backend_options_are_checked_and_used(bert_folder, tmp_path):
    out = hub.load("text-classify", model=str(bert_folder), device="cpu").export(tmp_path / "exported")
    pipe = _ort("text-classify", out, backend_options={"optimization": "basic", "threads": 1})
    assert pipe.metadata["optimization"] == "basic" and pipe.metadata["threads"] == 1
    with pytest.raises(InvalidInputError, match="threads"):
        _ort("text-classify", out, backend_options={"thread": 1})
    with pytest.raises(InvalidInputError, match="optimization"):
        _ort("text-classify", out, backend_options={"optimization": "max"})
    with pytest.raises(InvalidInputError, match="backend"):
        hub.load("text-classify", model=str(out), backend="tensorrt")
    with pytest.raises(InvalidInputError, match="backend='onnxruntime'"):
        hub.load("text-classify", model=str(bert_folder), backend_options={"threads": 1})
    with pytest.raises(ModelLoadError, match="backend='onnxruntime'"):
        hub.load("text-classify", model=str(out), device="cpu")  # torch cannot run a graph
    with pytest.raises(NotSupportedError, match="backend='torch'"):
        pipe.fine_tune([("good", "class_0")] * 4)
    with pytest.raises(NotSupportedError, match="no torch weights"):
        pipe.save(tmp_path / "saved")


def test_tasks_that_cannot_be_exported_are_refused(tmp_path):
    from tests.text.gpt_checkpoints import make_gpt2

    gen_folder = tmp_path / "gpt"
    make_gpt2(gen_folder)
    generate = hub.load("text-generate", model=str(gen_folder), device="cpu")
    out = generate.export(tmp_path / "gpt-onnx")  # the whole-sequence logits, no KV cache
    assert "no KV cache" in json.loads((out / "onnx.json").read_text())["description"]
    with pytest.raises(NotSupportedError, match="KV cache"):
        hub.load("text-generate", model=str(out), backend="onnxruntime")
    from hub.pipeline import Pipeline

    class Opaque(Pipeline):
        task = "opaque-task"

    with pytest.raises(NotSupportedError, match=r"'opaque-task' cannot be exported.*text-classify"):
        Opaque(torch.nn.Linear(2, 2)).export(tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_failed_parity_check_writes_nothing(bert_folder, tmp_path):
    pipe = hub.load("text-classify", model=str(bert_folder), device="cpu")
    target = tmp_path / "exported"
    with pytest.raises(ExportParityError, match="Nothing was written"):
        pipe.export(target, atol=1e-15)  # fp32 rounding alone exceeds it
    assert not target.exists() and list(tmp_path.iterdir()) == []  # no temporary folder left either
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SaveTargetError, match="notes.txt"):
        pipe.export(foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    first = pipe.export(target)  # an earlier export is Hub's and may be replaced
    assert pipe.export(target) == first


def test_missing_extra_names_it(bert_folder, tmp_path, monkeypatch):
    pipe = hub.load("text-classify", model=str(bert_folder), device="cpu")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'hub-sdk\[onnx\]'"):
        pipe.export(tmp_path / "exported")
    with pytest.raises(MissingExtraError, match=r"hub-sdk\[onnx\]"):
        _ort("text-classify", bert_folder)
    assert not (tmp_path / "exported").exists()


def test_cli_export(bert_folder, tmp_path, capsys):
    from hub.cli import main

    assert main(["export", "text-classify", str(tmp_path / "cli"), "--model", str(bert_folder)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "text-classify" and "model.onnx" in summary["files"]
    assert summary["parity"]["max_abs_diff"]["logits"] <= TOL and "backend='onnxruntime'" in summary["load"]
    assert main(["export", "recommend", str(tmp_path / "rec")]) == 2
    assert "cannot be exported" in capsys.readouterr().err
