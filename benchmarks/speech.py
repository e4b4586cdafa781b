"""Real-time factor of Hub's ``speech-recognize`` vs transformers' ASR pipeline, same weights and audio.

Run by hand (not a test)::

    python benchmarks/speech.py                     # CPU fp32, wav2vec2-base-sized model, 30 s of speech
    python benchmarks/speech.py --seconds 60 --repeats 3
    python benchmarks/speech.py --device cuda       # on a GPU machine

Both sides get the same ``Wav2Vec2ForCTC`` checkpoint at wav2vec2-base's size (12 layers,
hidden 768, conv feature encoder; random, seeded weights since the machines here cannot
download facebook/wav2vec2-base-960h) saved with ``save_pretrained`` + ``vocab.json`` +
``preprocessor_config.json``: Hub converts it into its shared backbone, transformers runs
``pipeline("automatic-speech-recognition")``. The audio is real synthesised speech (the
``asr`` test clips of ``examples/data_prep_speech.py``, flite voices, concatenated) when
available, else a chirp. Both use their chunking (``chunk_length_s=20``, stride 1/6) and
greedy CTC decoding, so audio decoding, resampling, chunking, the model and decoding are all
counted. Hub's own ``commands-ctc`` default is timed too when its weights are present.
RTF = processing seconds / audio seconds (lower is faster); the median of ``--repeats``
interleaved runs after one warm-up each.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    base_parser,
    interleaved_times,
    load_average,
    machine,
    machine_tag,
    write_results,
)

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONISRHDLUMCWFGYPBVK'XJQZ"]


def make_checkpoint(folder: Path, seed: int) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(seed)
    config = Wav2Vec2Config(vocab_size=len(VOCAB), pad_token_id=0, ctc_loss_reduction="mean")  # base-sized
    Wav2Vec2ForCTC(config).eval().save_pretrained(folder, safe_serialization=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
        "return_attention_mask": False, "sampling_rate": 16000, "feature_extractor_type": "Wav2Vec2FeatureExtractor"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Wav2Vec2CTCTokenizer", "word_delimiter_token": "|", "pad_token": "<pad>",
        "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "do_lower_case": False}))
    return folder


def speech(seconds: float) -> tuple[np.ndarray, str]:
    """``seconds`` of real synthesised speech (flite test clips) at 16 kHz, or a chirp."""
    try:
        import soundfile as sf

        from examples.data_prep_speech import root

        manifest = root() / "asr-test.jsonl"
        clips, total = [], 0
        for line in manifest.read_text().splitlines():
            audio, _ = sf.read(manifest.parent / json.loads(line)["path"], dtype="float32")
            clips.append(audio)
            total += audio.size
            if total >= seconds * 16000:
                return np.concatenate(clips)[: int(seconds * 16000)], "flite asr-test clips, concatenated"
    except (OSError, ImportError):
        pass
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.5 * np.sin(2 * np.pi * (200 + 100 * t) * t)).astype(np.float32), "chirp"



def ort_runners(folder: Path, audio, device: torch.device, dtype: str, info: dict) -> dict:
    """Hub's converted wav2vec2 on ONNX Runtime (``backend="onnxruntime"``: exported on the fly,
    parity-checked, into a temporary cache), fp32 and ORT's int8; CPU float32 runs only."""
    import os

    import hub
    from hub.errors import HubError

    if device.type != "cpu" or dtype != "float32":
        return {}
    os.environ.setdefault("HUB_ONNX_CACHE", str(folder.parent / "onnx-cache"))
    runners = {}
    for quantize, name in ((None, "hub wav2vec2 ORT fp32 (backend='onnxruntime')"),
                           ("int8", "hub wav2vec2 ORT int8 (backend='onnxruntime', quantize='int8')")):
        try:
            pipe = hub.load("speech-recognize", model=str(folder), device="cpu", backend="onnxruntime",
                            quantize=quantize)
        except (ImportError, HubError) as exc:  # no onnx extra, or an export that fails its own check
            print(f"{name} not run: {exc}", file=sys.stderr)
            continue
        info.setdefault("hub_ort", {})[name] = {k: pipe.metadata.get(k) for k in ("providers", "threads",
                                                                                  "quantization")}
        runners[name] = lambda p=pipe: p(audio, sampling_rate=16000, chunk_length_s=20)["text"]
    return runners


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)

    from transformers import pipeline as hf_pipeline

    import hub

    audio, audio_source = speech(args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_checkpoint(Path(tmp) / "w2v", args.seed)
        ours = hub.load("speech-recognize", model=str(folder), device=device)
        theirs = hf_pipeline("automatic-speech-recognition", model=str(folder), device=device)
        runners = {
            "hub wav2vec2 (converted)": lambda: ours(audio, sampling_rate=16000, chunk_length_s=20)["text"],
            "transformers pipeline": lambda: theirs({"raw": audio, "sampling_rate": 16000},
                                                    chunk_length_s=20)["text"],
        }
        if device.type == "cpu" and args.dtype == "float32":  # int8 compute: every Linear (convolutions float)
            ours8 = hub.load("speech-recognize", model=str(folder), device="cpu", quantize="int8")
            info["hub_int8_compute"] = ours8.metadata["compute"]
            runners["hub wav2vec2 int8 (quantize='int8')"] = lambda: ours8(audio, sampling_rate=16000,
                                                                          chunk_length_s=20)["text"]
        runners.update(ort_runners(folder, audio, device, args.dtype, info))
        default = ROOT / "plugins" / "hub_speech" / "weights" / "commands-ctc"
        if default.is_dir():
            small = hub.load("speech-recognize", model=str(default), device=device)
            runners["hub commands-ctc (shipped default)"] = lambda: small(audio, sampling_rate=16000)["text"]
        texts = {name: run() for name, run in runners.items()}  # warm-up, and the outputs to compare
        head = audio[: 15 * 16000]  # one chunk: no seams, no per-chunk normalisation
        unchunked = (ours(head, sampling_rate=16000)["text"],
                     theirs({"raw": head, "sampling_rate": 16000})["text"])
        times = interleaved_times(runners, args.repeats, device)
    info["load_average_end"] = load_average()
    rows = {name: {"median_s": statistics.median(t), "rtf": statistics.median(t) / args.seconds, "runs_s": t}
            for name, t in times.items()}
    # transformers' CTC pipeline prints special tokens (<s>, <unk>: skip_special_tokens=False) and keeps
    # letters they separate; Hub drops them before merging repeats, as tokenizer.decode(skip_special_tokens=True)
    # does. Compare with those tokens removed, repeated letters merged and spaces collapsed.
    def canonical(text: str) -> str:
        plain = " ".join(re.sub(r"<[^>]*>", "", text).split())
        return "".join(letter for letter, _ in itertools.groupby(plain))

    same = canonical(texts["hub wav2vec2 (converted)"]) == canonical(texts["transformers pipeline"])
    same_unchunked = canonical(unchunked[0]) == canonical(unchunked[1])
    int8_name = "hub wav2vec2 int8 (quantize='int8')"
    same_int8 = (canonical(texts[int8_name]) == canonical(texts["hub wav2vec2 (converted)"])
                 if int8_name in texts else None)
    report = {"machine": info, "machine_tag": machine_tag(info), "audio_seconds": args.seconds,
              "audio": audio_source, "dtype": args.dtype, "repeats": args.repeats, "results": rows,
              "identical_text_hub_vs_transformers": same, "identical_text_first_15s_unchunked": same_unchunked,
              "identical_text_hub_int8_vs_hub_fp32": same_int8}
    from common import machine_line

    table = "\n".join([
        f"\n### {args.seconds:.0f} s of speech, {args.device} {args.dtype} ({info['date']})", "",
        machine_line(info), "", "| recogniser | median s | RTF | speed-up vs transformers |", "| --- | --- | --- | --- |",
        *[f"| {name} | {r['median_s']:.3f} | {r['rtf']:.4f} | "
          f"{rows['transformers pipeline']['median_s'] / r['median_s']:.2f}x |" for name, r in rows.items()],
        "", f"Same weights on both wav2vec2 rows. Identical transcripts (special tokens removed, repeats merged): "
        f"{same_unchunked} on the first 15 s (one chunk), {same} on the whole clip (chunked: transformers "
        "normalises each chunk on its own, Hub the whole clip before cutting it)."
        + (f" Hub int8 transcript identical to Hub fp32's: {same_int8}." if same_int8 is not None else "")])
    print(table)
    if not args.no_write:
        write_results("speech", report, table, args.dtype, tags=(args.tag,) if args.tag else ())


if __name__ == "__main__":
    main()
