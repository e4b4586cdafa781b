"""fine_tune on an ImageFolder and on a CSV (new head, frozen backbone, best epoch kept,
clear data errors) and pretraining (supervised ViT, masked-image modelling) on scikit-learn's
real handwritten digits, held-out accuracy measured on digits the model never saw."""

from __future__ import annotations

import csv

import pytest
import torch

import hub
from hub.errors import ConfigError, DataError, InvalidInputError

pytest.importorskip("sklearn")

CNN = {"timm_model": "resnet10t", "model_args": {"channels": [8, 16, 32, 64], "stem_width": 8, "in_chans": 1},
       "preprocess": {"input_size": [1, 32, 32], "crop_pct": 1.0, "interpolation": "bilinear",
                      "mean": [0.5], "std": [0.5]}}
VIT = {"img_size": 32, "patch_size": 8, "in_chans": 1, "num_layers": 2, "hidden_size": 64, "num_heads": 2,
       "preprocess": {"crop_pct": 1.0, "interpolation": "bilinear", "mean": [0.5], "std": [0.5]}}
QUIET = {"progress": False, "device": "cpu", "save_checkpoints": False}
DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    import os

    from examples.data_prep_vision import digits as prepare

    saved = os.environ.get("HUB_DATA_CACHE")
    os.environ["HUB_DATA_CACHE"] = str(tmp_path_factory.mktemp("datasets"))
    try:
        return prepare()
    finally:
        if saved is None:
            os.environ.pop("HUB_DATA_CACHE")
        else:
            os.environ["HUB_DATA_CACHE"] = saved


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """A small CNN trained from scratch on the ImageFolder; its best epoch saved."""
    out = tmp_path_factory.mktemp("run")
    pipe = hub.create("image-classify", config=CNN, seed=0, device="cpu")
    result = pipe.fine_tune(str(digits["train"]), eval=str(digits["test"]), epochs=5, batch_size=16,
                            learning_rate=3e-3, warmup_ratio=0.1, schedule="cosine", metric_for_best="accuracy",
                            augment={"scale": (0.85, 1.0), "hflip": 0.0, "color_jitter": 0.0},
                            output_dir=str(out), **QUIET)
    return pipe, result, out


def test_fine_tune_on_an_image_folder_learns_held_out_digits(trained, digits):
    pipe, result, out = trained
    assert pipe.labels == DIGITS and pipe.image_mode == "L"
    assert result.epochs_run == 5 and result.best_metric == max(r["eval_accuracy"] for r in result.history)
    test = pipe.evaluate(str(digits["test"]))
    assert test["n"] == 360 and test["accuracy"] >= 0.8  # chance: 0.1
    assert abs(test["accuracy"] - result.best_metric) < 1e-6  # the pipeline holds the best epoch
    reloaded = hub.load("image-classify", model=str(out / "best"), device="cpu")
    assert reloaded.evaluate(str(digits["test"]))["accuracy"] == test["accuracy"]
    sample = sorted((digits["test"] / "7").iterdir())[0]
    assert reloaded(str(sample), top_k=3) == pipe(str(sample), top_k=3)


def test_fine_tune_a_csv_with_a_frozen_backbone_trains_a_new_head_only(trained, digits):
    _, _, out = trained
    rows = [(p.relative_to(digits["train"]).as_posix(), "odd" if int(p.parent.name) % 2 else "even")
            for p in sorted(digits["train"].rglob("*.png"))]
    table = digits["train"] / "parity.csv"
    with open(table, "w", newline="") as handle:
        csv.writer(handle).writerows([("path", "label"), *rows])
    model = hub.load("image-classify", model=str(out / "best"), device="cpu")
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    model.fine_tune(str(table), epochs=1, batch_size=32, learning_rate=1e-2, freeze_backbone=True,
                    reset_head=True, **QUIET)  # new label names: an explicit choice
    after = model.model.state_dict()
    assert model.labels == ["even", "odd"]  # a new head for the new classes
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"model.fc.weight", "model.fc.bias"}  # batch-norm running statistics untouched too
    assert all(p.requires_grad for p in model.model.parameters())  # unfrozen again afterwards
    assert model.evaluate(str(table))["accuracy"] > 0.75  # chance: about 0.5


def test_supervised_vit_pretraining_from_scratch(digits):
    pipe = hub.create("image-classify", config=VIT, seed=0, device="cpu")
    assert pipe.architecture == "vit" and pipe.model.embeddings.grid_size == (4, 4)
    result = pipe.pretrain(str(digits["train"]), epochs=3, batch_size=16, learning_rate=1e-3,
                           augment={"scale": (0.85, 1.0), "hflip": 0.0, "color_jitter": 0.0}, **QUIET)
    assert result.epochs_run == 3 and pipe.labels == DIGITS
    assert result.history[-1]["train_loss"] < 0.85 * result.history[0]["train_loss"]
    assert pipe.evaluate(str(digits["test"]))["accuracy"] >= 0.4  # chance: 0.1


def test_bad_training_data_is_a_clear_error(digits, tmp_path):
    pipe = hub.create("image-classify", config=CNN, seed=0, device="cpu")
    table = tmp_path / "bad.csv"
    table.write_text("path,label\nnope.png,cat\n")
    with pytest.raises(DataError, match=r"bad.csv:2: image .*nope.png.* does not exist"):
        pipe.fine_tune(str(table), epochs=1, **QUIET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        pipe.fine_tune(str(tmp_path / "empty"), epochs=1, **QUIET)
    with pytest.raises(DataError, match=r"item 1"):
        pipe.fine_tune([("a.png", "x"), "b.png"], epochs=1, **QUIET)
    with pytest.raises(InvalidInputError, match=r"labels \['9'\]"):
        pipe.fine_tune(str(digits["test"]), labels=DIGITS[:9], epochs=1, **QUIET)
    with pytest.raises(ConfigError, match="epochz"):
        pipe.fine_tune(str(digits["test"]), epochz=1)
    broken = tmp_path / "broken" / "cat"
    broken.mkdir(parents=True)
    (broken / "x.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="training data: input 0"):
        pipe.fine_tune(str(tmp_path / "broken"), epochs=1, **QUIET)


def test_masked_image_modelling_lowers_its_loss_and_keeps_the_encoder(digits):
    from hub_vision.pretrain import MaskedImageModel

    pipe = hub.create("image-embed", config={**VIT, "num_classes": 0}, seed=0, device="cpu")
    images = sorted(digits["train"].rglob("*.png"))[::2]
    encoder = pipe.model.encoder
    before = encoder.layers[0].attn.qkv.weight.detach().clone()
    result = pipe.pretrain(images, epochs=4, batch_size=64, learning_rate=3e-3, **QUIET)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.85 * losses[0], losses
    assert pipe.model.encoder is encoder and not torch.equal(before, encoder.layers[0].attn.qkv.weight)
    # the objective: masked patches only, exactly mask_ratio of them, pixels normalised per patch
    mim = MaskedImageModel(pipe.model, mask_ratio=0.5)
    mask = mim.random_mask(3, 16, torch.device("cpu"))
    assert mask.sum(1).tolist() == [8, 8, 8]
    x = torch.arange(2 * 1 * 32 * 32, dtype=torch.float32).reshape(2, 1, 32, 32)
    patches = mim.patchify(x)
    assert patches.shape == (2, 16, 64) and torch.equal(patches[0, 1], x[0, 0, :8, 8:16].reshape(-1))
    cnn = hub.create("image-classify", config=CNN, seed=0, device="cpu")
    with pytest.raises(ConfigError, match="masked-image modelling pretrains a ViT"):
        cnn.pretrain(images[:10], objective="mim", **QUIET)
