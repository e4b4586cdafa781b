"""What the speech pipelines share: loading models, audio inputs -> (chunked) waveforms,
padding into batches, the training loop around the common Trainer, and saving.

Long audio: a clip longer than ``chunk_length_s`` is cut into chunks of that length that
overlap their neighbours by ``stride_length_s`` on each side (default a sixth of the chunk,
as transformers' ASR pipeline does); every chunk goes through the model and the task
stitches the chunks' outputs (recognition: each chunk's frames in its overlap zones are
dropped and the rest concatenated before decoding; classification: chunk probabilities
averaged, weighted by length). Nothing is truncated.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np
import torch

from hub.data.padding import pad_sequences
from hub.errors import InvalidInputError
from hub.pipeline import Pipeline
from hub.validate import check_number, resolve_limit
from hub_speech.audio import check_rate, load_audio, max_audio_seconds, normalize

logger = logging.getLogger(__name__)
#: at most this many chunks per input unless ``max_chunks=`` or ``HUB_MAX_CHUNKS`` says otherwise
#: (an hour of audio in the default 20 s chunks takes 271)
DEFAULT_MAX_CHUNKS = 1024
MAX_CHUNKS_ENV = "HUB_MAX_CHUNKS"


def _all_frames(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The frame mask of an unpadded batch (the models leave it out): every frame is real."""
    logits = outputs["logits"]
    return torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)


class AudioPipeline(Pipeline):
    """Base of the speech pipelines; ``self.model`` takes (B, S) waveforms + a sample mask.

    Loading is :meth:`hub.pipeline.Pipeline.from_folder` (Hub or transformers format; a converted
    wav2vec2 model's vocabulary (``vocab.json``) and ``do_normalize``
    (``preprocessor_config.json``) are read by its converter, which sees the folder's side
    files, :class:`hub.checkpoint.Checkpoint`); each task names its ``model_types``."""

    __abstract__ = True
    architecture: ClassVar[str] = ""
    default_batch_size = 8
    default_chunk_length_s: ClassVar[float] = 20.0

    def __init__(self, model: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.model.to(self.device)

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    # -- inputs --------------------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        """The audio keywords every speech task shares, checked before any audio is read."""
        if params.get("sampling_rate") is not None:
            check_rate(params["sampling_rate"], "sampling_rate")
        chunk_s = check_number("chunk_length_s", params.get("chunk_length_s"), above=0, none_ok=True)
        stride_s = check_number("stride_length_s", params.get("stride_length_s"), minimum=0, none_ok=True)
        self._chunk_sizes(chunk_s, stride_s)
        resolve_limit("max_chunks", params.get("max_chunks"), MAX_CHUNKS_ENV, DEFAULT_MAX_CHUNKS)
        max_audio_seconds(params.get("max_audio_seconds"))

    def load_inputs(self, inputs: list[Any], sampling_rate: int | None,
                    max_seconds: int | None = None) -> list[Any]:
        return [load_audio(item, sampling_rate=sampling_rate, target_rate=self.sample_rate, index=i,
                           max_seconds=max_seconds)
                for i, item in enumerate(inputs)]

    def _chunk_sizes(self, chunk_length_s: float | None, stride_length_s: float | None) -> tuple[int, int]:
        """(chunk, stride) in samples, whole frames each; errors name the keyword."""
        chunk_s = self.default_chunk_length_s if chunk_length_s is None else chunk_length_s
        if (isinstance(chunk_s, bool) or not isinstance(chunk_s, (int, float)) or not math.isfinite(chunk_s)
                or chunk_s <= 0):
            raise InvalidInputError(f"chunk_length_s must be a positive number of seconds, got {chunk_length_s!r}.")
        stride_s = chunk_s / 6 if stride_length_s is None else stride_length_s
        if (isinstance(stride_s, bool) or not isinstance(stride_s, (int, float)) or not math.isfinite(stride_s)
                or stride_s < 0 or 2 * stride_s >= chunk_s):
            raise InvalidInputError(f"stride_length_s must be >= 0 and less than half of chunk_length_s "
                                    f"({chunk_s}), got {stride_length_s!r}.")
        rate, frame = self.sample_rate, self.model.samples_per_frame
        # chunk and stride lengths in whole frames, so that frames drop out cleanly when stitching
        # (a chunk longer than any clip Hub accepts means "do not cut"; capped so the sizes stay finite)
        chunk = max(frame, int(round(min(chunk_s, 1e7) * rate / frame)) * frame)
        stride = int(round(stride_s * rate / frame)) * frame
        if chunk < self.model.min_samples:
            raise InvalidInputError(f"chunk_length_s={chunk_s} is shorter than the "
                                    f"{self.model.min_samples / rate * 1000:.0f} ms the model needs per chunk.")
        if chunk - 2 * stride < frame:  # no step left once rounded to whole frames
            raise InvalidInputError(f"stride_length_s={stride_s} leaves no step between chunks of "
                                    f"{chunk_s} s once rounded to the model's {frame / rate * 1000:g} ms frames; "
                                    "pass a smaller stride_length_s.")
        return chunk, stride

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        return normalize(samples) if self.model.config.get("do_normalize", True) else samples

    def chunk(self, inputs: list[Any], *, sampling_rate: int | None = None, chunk_length_s: float | None = None,
              stride_length_s: float | None = None, max_chunks: int | None = None,
              max_audio_seconds: int | None = None) -> list[dict[str, Any]]:
        """Features: one per input, or one per overlapping chunk of a long input.

        ``max_chunks``: the most chunks one input may take (default :data:`DEFAULT_MAX_CHUNKS`,
        or ``HUB_MAX_CHUNKS``); ``max_audio_seconds``: the longest input (see
        :mod:`hub_speech.audio`). Both are checked before the model runs."""
        chunk, stride = self._chunk_sizes(chunk_length_s, stride_length_s)
        cap = resolve_limit("max_chunks", max_chunks, MAX_CHUNKS_ENV, DEFAULT_MAX_CHUNKS)
        rate = self.sample_rate
        step = chunk - 2 * stride
        audios = self.load_inputs(inputs, sampling_rate, max_audio_seconds)
        for index, audio in enumerate(audios):  # every input checked before any is prepared
            count = 1 if audio.samples.size <= chunk else -(-(audio.samples.size - chunk) // step) + 1
            if count > cap:
                raise InvalidInputError(
                    f"input {index} ({audio.seconds:,.1f} s) would be cut into {count:,} chunks of "
                    f"{chunk / rate:g} s, more than max_chunks={cap}; pass max_chunks={count} (or set "
                    f"{MAX_CHUNKS_ENV}), or a longer chunk_length_s / shorter stride_length_s.")
        features = []
        for index, audio in enumerate(audios):
            if audio.samples.size < self.model.min_samples:
                raise InvalidInputError(
                    f"input {index} is {audio.seconds * 1000:.1f} ms long; the model needs at least "
                    f"{self.model.min_samples / rate * 1000:.0f} ms of audio.")
            meta = {"seconds": round(audio.seconds, 3), "chunks": 1, "silent": audio.silent, "source": audio.source}
            samples = self.prepare(audio.samples)  # normalised over the whole clip, then cut
            if samples.size <= chunk:
                features.append({"input_values": samples, "length": samples.size,
                                 "input_index": index, "meta": meta, "offset": 0, "left": 0, "right": 0})
                continue
            starts = list(range(0, samples.size - chunk + step, step))
            meta["chunks"] = len(starts)
            for number, start in enumerate(starts):
                piece = samples[start:start + chunk]
                if piece.size < self.model.min_samples:  # a sliver at the end: covered by the previous chunk
                    meta["chunks"] -= 1
                    continue
                last = start + chunk >= samples.size
                features.append({"input_values": piece, "length": piece.size, "input_index": index,
                                 "meta": meta, "offset": start, "left": 0 if number == 0 else stride,
                                 "right": 0 if last else stride})
                if last:
                    meta["chunks"] = number + 1
                    break
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        values, mask = pad_sequences([f["input_values"] for f in features], dtype=torch.float32)
        batch = {"input_values": values, "attention_mask": mask}
        if "label" in features[0]:
            labels = [f["label"] for f in features]
            if isinstance(labels[0], list):  # CTC targets, padded with -100
                batch["labels"] = pad_sequences(labels, value=-100)[0]
            else:
                batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch

    #: the model outputs :meth:`forward` reads, with their dynamic axes (what the export writes)
    export_outputs: ClassVar[dict[str, dict[int, str]]] = {"logits": {0: "batch"}}

    def _export_spec(self) -> Any:
        """The model's outputs from waveforms + sample mask (dynamic batch and length), as
        :meth:`forward` calls it; loading, resampling, chunking and decoding stay Hub's. A
        log-mel front end is traced as a convolution with the DFT's cosines and sines (the
        same arithmetic; ``torch.stft``'s complex output has no ONNX form in the exporter)."""
        from hub.export import ExportSpec, ModuleCall, waveform_examples
        from hub_speech.models.layers import exportable_front_ends

        outputs = tuple(self.export_outputs)
        samples = {0: "batch", 1: "samples"}
        return ExportSpec(
            module=ModuleCall(self.model, outputs, {"frame_mask": _all_frames}),
            inputs=("input_values", "attention_mask"), outputs=outputs,
            dynamic_axes={"input_values": samples, "attention_mask": samples, **self.export_outputs},
            examples=waveform_examples(self.sample_rate, self.model.min_samples),
            description=f"{self.metadata.get('architecture') or self.architecture}: {', '.join(outputs)} from "
                        "mono waveforms at the sample rate (batch, samples) and their sample mask (1 = audio)",
            optional_inputs={"attention_mask": lambda given: torch.ones(given["input_values"].shape, dtype=torch.long)},
            preprocessing={"sample_rate": self.sample_rate,
                           "normalize": "zero mean, unit variance per clip" if self.model.config.get(
                               "do_normalize", True) else "none",
                           "chunk_length_s": self.default_chunk_length_s,
                           **({"labels": list(self.model.labels)} if hasattr(self.model, "labels") else {}),
                           **({"vocab": list(self.model.config["vocab"])} if "vocab" in self.model.config else {})},
            trace_context=lambda: exportable_front_ends(self.model))

    def model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the sample mask when nothing is padded (the models then skip masking)."""
        if bool(batch["attention_mask"].all()):
            return {"input_values": batch["input_values"].to(self.dtype or torch.float32)}
        return {"input_values": batch["input_values"].to(self.dtype or torch.float32),
                "attention_mask": batch["attention_mask"]}

    # -- training ------------------------------------------------------------------------
    def training_features(self, records: list[dict[str, Any]], target: str | None,
                          encode: Any = None) -> list[dict[str, Any]]:
        """Whole clips (no chunking) as training features, with ``label`` = ``encode(record[target])``."""
        features = []
        for index, record in enumerate(records):
            audio = load_audio(record["audio"], sampling_rate=record.get("sampling_rate"),
                               target_rate=self.sample_rate, index=index)
            if audio.samples.size < self.model.min_samples:
                continue
            feature = {"input_values": self.prepare(audio.samples), "length": audio.samples.size}
            if target is not None:
                feature["label"] = encode(record[target])
            features.append(feature)
        return features

    def _architecture_to_save(self) -> str:
        """The loaded architecture (a converted checkpoint keeps its name), else the task's."""
        return self.metadata.get("architecture") or self.architecture
