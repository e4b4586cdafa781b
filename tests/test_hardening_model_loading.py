"""Hostile model folders and arguments (issue 12): configs that do not match their weights,
oversized configs, NaN weights, edited head counts, legacy pickles, bad configs and bad
``hub.load`` / ``hub.create`` arguments. Every case ends in a HubError that names the key,
the file or the argument, never a raw KeyError / ZeroDivisionError / torch error or an
out-of-memory kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import hub
from hub.errors import ConfigError, InputTypeError, InvalidInputError, ModelLoadError
from hub.modeling import build_module, load_model, save_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BERT = {"vocab_size": 50, "max_positions": 16, "labels": ["a", "b"],
        "backbone": {"hidden_size": 16, "num_layers": 2, "num_heads": 4, "intermediate_size": 32}}
SPEECH = {"vocab": ["<pad>", "a", "b"], "subsample_channels": 4, "n_mels": 16,
          "backbone": {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32, "rotary_dim": 8}}
SASREC = {"num_items": 30, "max_len": 8, "hidden_size": 16, "num_layers": 2, "num_heads": 2}
VIT = {"img_size": 16, "patch_size": 8, "num_classes": 3,
       "backbone": {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32}}
TIMM = {"timm_model": "resnet10t", "model_args": {"channels": [8, 16, 32, 64], "stem_width": 8}, "num_classes": 3}


def hub_folder(folder: Path, architecture: str, config: dict, *, task: str = "text-classify",
               mutate=None) -> Path:
    """A tiny random Hub model folder (config.json + model.safetensors), saved as Hub saves."""
    torch.manual_seed(0)
    module = build_module(architecture, json.loads(json.dumps(config)))
    if mutate is not None:
        mutate(module)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(module, architecture, config, folder, extra={"task": task})
    return folder


def edit_config(folder: Path, edit) -> Path:
    path = folder / "config.json"
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    return folder


# -- item 6: a config's sizes are checked against its weights before anything grows -------
_LOAD_IN_A_MEMORY_CAP = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    from hub.errors import ModelLoadError
    from hub.modeling import load_model
    for folder in sys.argv[1:]:
        try:
            load_model(folder, device="cpu")
            print("LOADED", folder)
        except ModelLoadError as exc:
            print("REFUSED", folder, str(exc).replace("\\n", " "))
        except MemoryError:
            print("MEMORY", folder)
        sys.stdout.flush()
""")


def test_a_billion_layers_next_to_small_weights_is_refused_without_allocating(tmp_path):
    """The 200-byte config.json of the review, for every architecture family: the meta build
    stops after a few thousand registrations (before: memory grew until the OOM killer)."""
    layers = 10**9
    folders = [
        edit_config(hub_folder(tmp_path / "bert", "bert-classifier", BERT),
                    lambda c: c["config"]["backbone"].update(num_layers=layers)),
        edit_config(hub_folder(tmp_path / "speech", "speech-ctc", SPEECH, task="speech-recognize"),
                    lambda c: c["config"]["backbone"].update(num_layers=layers)),
        edit_config(hub_folder(tmp_path / "sasrec", "sasrec", SASREC, task="recommend"),
                    lambda c: c["config"].update(num_layers=layers)),
        edit_config(hub_folder(tmp_path / "vit", "vit", VIT, task="image-classify"),
                    lambda c: c["config"]["backbone"].update(num_layers=layers)),
        edit_config(hub_folder(tmp_path / "timm", "timm", TIMM, task="image-classify"),  # timm's own limit: 65536
                    lambda c: c["config"]["model_args"].update(layers=[1, 60_000, 1, 1])),
    ]
    run = subprocess.run([sys.executable, "-c", _LOAD_IN_A_MEMORY_CAP, *map(str, folders)],
                         capture_output=True, text=True, timeout=300, env=os.environ.copy())
    lines = run.stdout.splitlines()
    assert len(lines) == len(folders), run.stdout + run.stderr
    for line, folder in zip(lines, folders):
        assert line.startswith(f"REFUSED {folder}"), line
        assert "does not belong to these weights" in line, line
        assert "1,000,000,000" in line or "model_args.layers[1]=60,000" in line, line


def test_a_too_wide_config_names_the_culprit_key(tmp_path):
    folder = edit_config(hub_folder(tmp_path / "m", "bert-classifier", BERT),
                         lambda c: c["config"].update(vocab_size=10**9))
    with pytest.raises(ModelLoadError, match=r"vocab_size=1,000,000,000") as info:
        load_model(folder)
    assert str(folder / "config.json") in str(info.value)


def test_converted_checkpoint_layer_counts_must_match_the_weights(tmp_path):
    from tests.speech.checkpoints import wav2vec2_ctc_folder
    from tests.text.checkpoints import make_bert_classifier
    from tests.text.gpt_checkpoints import make_gpt2

    cases = []
    make_bert_classifier(tmp_path / "bert")
    cases.append((edit_config(tmp_path / "bert", lambda c: c.update(num_hidden_layers=10**9)), "num_hidden_layers"))
    make_gpt2(tmp_path / "gpt2")
    cases.append((edit_config(tmp_path / "gpt2", lambda c: c.update(n_layer=10**9)), "n_layer"))
    wav2vec2_ctc_folder(tmp_path / "w2v")
    cases.append((edit_config(tmp_path / "w2v", lambda c: c.update(num_hidden_layers=10**9)), "num_hidden_layers"))
    for folder, key in cases:
        with pytest.raises(ModelLoadError, match=rf"says {key}=1,000,000,000 but the weights hold 2 \(layers 0\.\.1"):
            load_model(folder)


def test_converter_errors_are_model_load_errors_naming_the_folder(tmp_path):
    """A converter indexing a transformers config that lacks a key was a raw KeyError."""
    from tests.speech.checkpoints import wav2vec2_ctc_folder
    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(tmp_path / "bert")
    edit_config(tmp_path / "bert", lambda c: c.pop("vocab_size"))
    with pytest.raises(ModelLoadError, match=r"missing 'vocab_size'") as info:
        load_model(tmp_path / "bert")
    assert str(tmp_path / "bert") in str(info.value)
    # wav2vec2's weights getter raised a bare KeyError for a missing tensor
    folder = wav2vec2_ctc_folder(tmp_path / "w2v")
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    state = {k: v for k, v in state.items() if "feature_projection.projection.weight" not in k}
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"missing weight .*feature_projection\.projection\.weight"):
        load_model(folder)


def test_a_model_from_scratch_is_bounded_by_documented_limits(monkeypatch):
    with pytest.raises(ConfigError, match=r"HUB_MAX_MODULES.*num_layers=1,000,000,000"):
        hub.create("image-classify", config={"num_layers": 10**9, "labels": ["a", "b"]}, device="cpu")
    with pytest.raises(ConfigError, match=r"HUB_MAX_MODULES.*num_layers=1,000,000,000"):
        hub.create("recommend", config={"num_layers": 10**9}, device="cpu")
    monkeypatch.setenv("HUB_MAX_PARAMETERS", "1000")
    with pytest.raises(ConfigError, match=r"more than 1,000 parameter values.*HUB_MAX_PARAMETERS"):
        hub.create("image-classify", config={**VIT, "labels": ["a", "b", "c"]}, device="cpu")
    monkeypatch.setenv("HUB_MAX_PARAMETERS", "lots")
    with pytest.raises(ConfigError, match=r"HUB_MAX_PARAMETERS='lots' must be a positive integer"):
        hub.create("image-classify", config={**VIT, "labels": ["a", "b", "c"]}, device="cpu")
    monkeypatch.setenv("HUB_MAX_PARAMETERS", str(10**6))
    pipe = hub.create("image-classify", config={**VIT, "labels": ["a", "b", "c"]}, device="cpu")
    assert pipe.labels == ["a", "b", "c"]


# -- item 16: NaN weights, edited head counts ---------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused_naming_the_tensor(tmp_path, bad):
    def poison(module):
        with torch.no_grad():
            module.head.classifier.weight[1, 3] = bad

    folder = hub_folder(tmp_path / "m", "bert-classifier", BERT, mutate=poison)
    with pytest.raises(ModelLoadError, match=r"weight 'head\.classifier\.weight' \(2, 16\) holds 1 NaN or infinite"):
        load_model(folder)


def test_nan_in_a_converted_checkpoint_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["bert.encoder.layer.1.output.dense.weight"][0, 0] = float("nan")
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"'encoder\.encoder\.layers\.1\.mlp\.fc2\.weight'.*NaN"):
        load_model(tmp_path)


def test_large_finite_weights_whose_sum_overflows_still_load(tmp_path):
    """The fast check sums each tensor; a sum that overflows is re-checked element-wise."""
    def huge(module):
        with torch.no_grad():
            module.head.classifier.weight.fill_(3e38)

    load_model(hub_folder(tmp_path / "m", "bert-classifier", BERT, mutate=huge))


def test_an_edited_head_count_is_refused_when_the_weights_recorded_it(tmp_path):
    """6 heads for a 12-head checkpoint had identical shapes, loaded and predicted differently."""
    folder = hub_folder(tmp_path / "m", "bert-classifier", BERT)
    load_model(folder)  # as saved: fine
    edit_config(folder, lambda c: c["config"]["backbone"].update(num_heads=2))
    with pytest.raises(ModelLoadError, match=r"backbone\.num_heads=2, but the weights were saved with "
                                             r"backbone\.num_heads=4.*set it back to 4"):
        load_model(folder)


def test_an_edited_rotary_dim_is_refused(tmp_path):
    folder = hub_folder(tmp_path / "m", "speech-ctc", SPEECH, task="speech-recognize")
    edit_config(folder, lambda c: c["config"]["backbone"].update(rotary_dim=4))
    with pytest.raises(ModelLoadError, match=r"backbone\.rotary_dim=4, but the weights were saved with "
                                             r"backbone\.rotary_dim=8"):
        load_model(folder)


def test_heads_that_do_not_divide_the_width_are_a_config_error(tmp_path):
    folder = edit_config(hub_folder(tmp_path / "m", "bert-classifier", BERT),
                         lambda c: c["config"]["backbone"].update(num_heads=5))
    with pytest.raises(ConfigError, match=r"hidden_size \(16\) must be divisible by num_heads \(5\); choose "
                                          r"num_heads among \[1, 2, 4, 8, 16\]"):
        load_model(folder)


# -- item 18: config validation -------------------------------------------------------------
EMPTY_CONFIG_NEEDS = [
    ("bert", "'vocab_size'"), ("bert-classifier", "'vocab_size'"), ("bert-mlm", "'vocab_size'"),
    ("causal-lm", "'vocab_size'"), ("timm", "'timm_model'"), ("torchvision-resnet", "'torchvision_model'"),
    ("speech-ctc", "'vocab'"), ("audio-classifier", "'labels'"), ("wav2vec2-ctc", "'conv_dim'"),
    ("mf", "'num_items'"), ("bpr", "'num_items'"), ("ncf", "'num_items'"), ("sasrec", "'num_items'"),
    ("bert4rec", "'num_items'"),
]


@pytest.mark.parametrize("architecture, key", EMPTY_CONFIG_NEEDS)
def test_an_empty_config_names_the_missing_key(architecture, key):
    """``config: {}`` was a KeyError from inside a constructor."""
    with pytest.raises(ConfigError, match=key):
        build_module(architecture, {}, {"x": torch.zeros(1)})


def test_an_empty_hub_config_in_a_folder_names_the_file(tmp_path):
    folder = edit_config(hub_folder(tmp_path / "m", "bert-classifier", BERT), lambda c: c.update(config={}))
    with pytest.raises(ConfigError, match=r"config\.json': bert-classifier config needs 'vocab_size'"):
        load_model(folder)


BAD_VALUES = [
    ("backbone", "num_heads", 0, r"'num_heads' must be an integer >= 1, got 0"),
    ("backbone", "hidden_size", -16, r"'hidden_size' must be an integer >= 1, got -16"),
    ("backbone", "intermediate_size", "32", r"'intermediate_size' must be an integer >= 1, got '32' \(str\)"),
    ("backbone", "num_layers", 2.0, r"'num_layers' must be an integer >= 0, got 2.0"),
    ("backbone", "dropout", float("nan"), r"'dropout' must be a finite number >= 0.0 and < 1.0, got nan"),
    ("backbone", "activation", "tanh", r"'activation' must be one of 'gelu', 'gelu_tanh'"),
    ("backbone", "causal", 1, r"'causal' must be true or false, got 1"),
    (None, "vocab_size", -1, r"'vocab_size' must be an integer >= 1, got -1"),
    (None, "max_positions", None, r"'max_positions' must be an integer >= 1"),
    (None, "position", "rotary", r"'position' must be one of 'learned', 'sinusoidal', 'none'"),
    (None, "labels", "ab", r"'labels' must be a non-empty list of label names"),
    (None, "pooling", "max", r"'pooling' must be one of 'cls', 'mean'"),
    (None, "pad_token_id", 50, r"'pad_token_id' must be an integer >= 0 and <= 49"),
]


@pytest.mark.parametrize("section, key, value, message", BAD_VALUES)
def test_bad_config_values_are_one_config_error_naming_the_key(section, key, value, message):
    config = json.loads(json.dumps(BERT))
    (config[section] if section else config)[key] = value
    with pytest.raises(ConfigError, match=message):
        build_module("bert-classifier", config)


@pytest.mark.parametrize("task, config, message", [
    ("text-generate", {"num_heads": 0}, r"'num_heads' must be an integer >= 1, got 0"),
    ("text-generate", {"num_layers": "4"}, r"'num_layers' must be an integer >= 0, got '4'"),
    ("text-generate", {"num_layer": 4}, r"Unknown causal-lm config key 'num_layer'"),
    ("fill-mask", {"hidden_size": -8}, r"'hidden_size' must be an integer >= 1, got -8"),
    ("image-classify", {"num_heads": 0, "labels": ["a"]}, r"'num_heads' must be an integer >= 1, got 0"),
    ("image-classify", {"hidden_size": "192"}, r"'backbone.hidden_size' must be an integer >= 1, got '192'"),
    ("image-classify", {"patch_size": 0}, r"'patch_size' must be a positive integer or a list of two"),
    ("image-classify", {"img_size": 30, "patch_size": 16}, r"img_size \[30, 30\] must be a multiple of patch_size"),
    ("image-classify", {"num_layer": 2}, r"unknown key\(s\) 'num_layer' \(did you mean 'num_layers'\?\)"),
    ("image-classify", {"labels": 3}, r"'labels' must be a non-empty list of label names"),
    ("image-classify", {"timm_model": "resnet10t", "num_clases": 3}, r"unknown key\(s\) 'num_clases'"),
    ("image-classify", {"timm_model": "resnet10t", "num_classes": -1}, r"'num_classes' must be an integer >= 0"),
    ("image-embed", {"global_pool": "mean"}, r"'global_pool' must be one of 'token', 'avg'"),
    ("speech-recognize", {"n_mels": -1}, r"'n_mels' must be an integer >= 1 and <= 201, got -1"),
    ("speech-recognize", {"n_fft": 10**9}, r"'n_fft' must be an integer >= 16 and <= 65536"),
    ("speech-recognize", {"hop_lenght": 160}, r"unknown key\(s\) 'hop_lenght' \(did you mean 'hop_length'\?\)"),
    ("speech-recognize", {"backbone": {"num_heads": 0}}, r"'num_heads' must be an integer >= 1, got 0"),
    ("speech-recognize", {"spec_augment": {"time_width": 2}}, r"'spec_augment\.time_width' must be a finite"),
    ("audio-classify", {"labels": ["yes", "no"], "pooling": "max"}, r"'pooling' must be one of 'mean', 'cls'"),
    ("recommend", {"num_heads": 0}, r"'num_heads' must be an integer >= 1, got 0"),
    ("recommend", {"num_heads": 3}, r"hidden_size \(64\) must be divisible by num_heads \(3\)"),
    ("recommend", {"dropuot": 0.1}, r"unknown key\(s\) 'dropuot' \(did you mean 'dropout'\?\)"),
    ("recommend", {"architecture": "mf", "factors": -2}, r"'factors' must be an integer >= 1"),
    ("recommend", {"architecture": "ncf", "mlp_layers": [1]}, r"mlp_layers\[0\] must be at least 2"),
    ("recommend", {"architecture": ["mf"]}, r"Unknown recommender architecture \['mf'\]"),
])
def test_hub_create_validates_configs(tmp_path, task, config, message):
    tokenizer = None
    if task in ("text-generate", "fill-mask"):
        from tests.text.checkpoints import make_wordpiece_tokenizer

        tokenizer = make_wordpiece_tokenizer(tmp_path / "tok")
    with pytest.raises(ConfigError, match=message):
        hub.create(task, config=config, tokenizer=tokenizer, device="cpu")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"config": 5}, InputTypeError, r"hub\.create\(config=\.\.\.\) must be a dict"),
    ({"config": ["num_layers", 2]}, InputTypeError, r"must be a dict of model sizes .*got list"),
    ({"seed": "a"}, InvalidInputError, r"seed=\.\.\.\) must be a non-negative integer, got 'a'"),
    ({"seed": -1}, InvalidInputError, r"must be a non-negative integer, got -1"),
])
def test_hub_create_checks_its_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        hub.create("image-classify", device="cpu", **kwargs)


# -- item 18: hub.load's arguments ----------------------------------------------------------
ICONS = Path(__file__).resolve().parents[1] / "plugins" / "hub_vision" / "weights" / "icon-context-resnet"


@pytest.mark.parametrize("model", [5, 3.5, ["a"], b"icons"])
def test_hub_load_model_must_be_a_string_or_path(model):
    with pytest.raises(InputTypeError, match=r"hub\.load\(model=\.\.\.\) takes a catalogue name, a local folder"):
        hub.load("image-classify", model=model)


def test_hub_load_takes_a_path_object():
    assert hub.load("image-classify", model=ICONS, device="cpu").labels[0] == "actions"


@pytest.mark.parametrize("device", ["meta", torch.device("meta")])
def test_the_meta_device_is_refused(device):
    with pytest.raises(InvalidInputError, match=r"device 'meta' holds shapes but no data"):
        hub.load("image-classify", model=str(ICONS), device=device)


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool, torch.int64, "int8", "float8"])
def test_non_floating_dtypes_are_refused_listing_the_allowed(dtype):
    with pytest.raises(InvalidInputError, match=r"dtype .*(cannot hold|not understood).*'float32', 'bfloat16', "
                                                r"'float16', 'float64'"):
        hub.load("image-classify", model=str(ICONS), device="cpu", dtype=dtype)


def test_a_cuda_index_past_the_gpus_is_refused():
    with pytest.raises(InvalidInputError, match=r"cuda:99"):
        hub.load("image-classify", model=str(ICONS), device="cuda:99")


def test_text_embed_on_an_image_model_names_the_right_task():
    """Was AttributeError: 'TimmModel' object has no attribute 'encoder'."""
    with pytest.raises(ModelLoadError, match=r"holds a 'timm' model; text-embed needs a BERT-family encoder.*"
                                             r"It is a model for image-classify: load it with "
                                             r"hub\.load\('image-classify'"):
        hub.load("text-embed", model=str(ICONS), device="cpu")


def test_other_tasks_on_the_wrong_model_name_the_right_task():
    for task in ("text-classify", "speech-recognize", "recommend"):
        with pytest.raises(ModelLoadError, match=r"It is a model for image-classify"):
            hub.load(task, model=str(ICONS), device="cpu")


# -- item 19: legacy pytorch_model.bin --------------------------------------------------------
def _legacy_bert(folder: Path, *, zipfile: bool):
    from tests.text.checkpoints import make_bert_classifier

    reference = make_bert_classifier(folder)
    (folder / "model.safetensors").unlink()
    torch.save(reference.state_dict(), folder / "pytorch_model.bin", _use_new_zipfile_serialization=zipfile)
    return reference


def test_a_pre_zipfile_pytorch_model_bin_loads(tmp_path):
    """torch.save(..., _use_new_zipfile_serialization=False) cannot be mmap-ed; it was refused."""
    reference = _legacy_bert(tmp_path, zipfile=False)
    pipe = hub.load("text-classify", model=str(tmp_path), device="cpu")
    batch = pipe.tokenizer(["good food", "bad price"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = pipe.model(batch["input_ids"], batch["attention_mask"])["logits"]
        theirs = reference(**batch).logits
    assert (ours - theirs).abs().max().item() <= 1e-4


class _Payload:
    """Unpickling this would create a file: proof of code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("zipfile", [True, False])
def test_a_pickle_with_code_is_refused_in_either_format(tmp_path, zipfile):
    _legacy_bert(tmp_path, zipfile=True)
    marker = tmp_path / "pwned"
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["payload"] = _Payload(marker)
    torch.save(state, tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=zipfile)
    with pytest.raises(ModelLoadError, match=r"Hub only loads tensors from pickles \(weights_only=True"):
        load_model(tmp_path)
    assert not marker.exists()


def test_a_pickle_that_is_not_a_state_dict_is_refused(tmp_path):
    _legacy_bert(tmp_path, zipfile=True)
    torch.save([torch.zeros(2)], tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"does not hold a state dict \(names -> tensors\) but a list"):
        load_model(tmp_path)



# -- siblings: sharded indexes, int8 scales, load_model's dtype ----------------------------
@pytest.mark.parametrize("shard", ["../outside.safetensors", "/dev/zero", "sub/part.safetensors", "weights.bin"])
def test_a_shard_index_may_only_name_files_in_the_folder(tmp_path, shard):
    folder = hub_folder(tmp_path / "m", "bert-classifier", BERT)
    (folder / "model.safetensors").rename(folder / "part.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": shard}}))
    with pytest.raises(ModelLoadError, match=r"names the shard .*must be \.safetensors files in the model folder"):
        load_model(folder)


def test_an_int8_scale_that_does_not_fit_its_weight_is_a_clear_error(tmp_path):
    from safetensors.torch import load_file, save_file

    from hub.quantize import SCALE_SUFFIX

    config = {**json.loads(json.dumps(BERT)), "vocab_size": 100}  # a 100 x 16 embedding is quantized
    module = build_module("bert-classifier", config)
    folder = tmp_path / "q"
    folder.mkdir()
    save_model(module, "bert-classifier", config, folder, quantize=True)
    load_model(folder)  # as saved: fine
    state = load_file(folder / "model.safetensors")
    name = next(k for k in state if k.endswith(SCALE_SUFFIX))
    state[name] = state[name][:-1]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=rf"int8 scale '{name}' .* does not fit its weight"):
        load_model(folder)


def test_load_model_refuses_an_integer_dtype(tmp_path):
    folder = hub_folder(tmp_path / "m", "bert-classifier", BERT)
    with pytest.raises(InvalidInputError, match=r"dtype torch\.int8 cannot hold a model's weights"):
        load_model(folder, dtype=torch.int8)


def test_the_shipped_default_with_its_head_count_edited_is_refused(tmp_path):
    """The reviewer's reproduction: the shipped 12-head MiniLM with ``num_heads: 6``."""
    import json
    import shutil

    import hub
    from hub.errors import ModelLoadError
    from hub.registry import get_registry
    from hub.sources import resolve_source

    shipped = resolve_source(get_registry().model("sentiment-minilm").source).folder
    folder = tmp_path / "edited"
    shutil.copytree(shipped, folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["config"]["backbone"]["num_heads"] == 12
    config["config"]["backbone"]["num_heads"] = 6
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="num_heads=6.*saved with.*=12"):
        hub.load("text-classify", model=str(folder))
