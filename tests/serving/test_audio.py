"""Audio over HTTP (speech-recognize from a folder): WAV files as base64, multipart uploads and
raw samples in the native route; FP32 sample tensors and base64 files in the Open Inference
Protocol; ragged result fields (timestamped chunks) as JSON text. Every answer equals the
in-process pipeline's."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.serving.conftest import serving, wav_bytes


@pytest.fixture(scope="module")
def client(folders):
    with serving([f"asr={folders['asr']}"], max_wait_ms=2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            yield c


def test_native_audio_files_and_samples(client, pipes):
    asr = pipes["asr"]
    (one, samples), (two, _) = wav_bytes(1), wav_bytes(2, seconds=0.9)
    expected = asr([one, two])
    as_b64 = client.post("/models/asr/predict", json={"inputs": [{"b64": base64.b64encode(b).decode()}
                                                                 for b in (one, two)]}).json()
    assert as_b64["outputs"] == expected and as_b64["metadata"] == [r.metadata for r in expected]
    uploaded = client.post("/models/asr/predict", files={"file": ("a.wav", one, "audio/wav")}).json()
    assert uploaded["outputs"] == expected[0]
    raw = client.post("/models/asr/predict", json={"inputs": {"array": samples.tolist(), "sampling_rate": 16000}})
    assert raw.json()["outputs"] == asr({"array": samples, "sampling_rate": 16000})
    path = client.post("/models/asr/predict", json={"inputs": "clip.wav"})
    assert path.status_code == 400 and "would name a file on the server" in path.json()["error"]["message"]


def test_oip_audio_tensors_and_ragged_fields(client, pipes):
    asr = pipes["asr"]
    (one, samples), (two, other) = wav_bytes(3), wav_bytes(4)
    body = client.post("/v2/models/asr/infer", json={
        "inputs": [{"name": "audio", "shape": [2, samples.size], "datatype": "FP32",
                    "data": [samples.tolist(), other.tolist()]}],
        "parameters": {"sampling_rate": 16000, "return_timestamps": "char"}}).json()
    expected = asr([samples, other], sampling_rate=16000, return_timestamps="char")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["text"] == {"name": "text", "datatype": "BYTES", "shape": [2], "data": [r["text"] for r in expected]}
    chunks = outputs["chunks"]  # a list of {text, timestamp} per input: JSON text, one per input
    assert chunks["datatype"] == "BYTES" and chunks["parameters"] == {"content_type": "json"}
    assert [json.loads(c) for c in chunks["data"]] == json.loads(json.dumps([r["chunks"] for r in expected]))
    files = client.post("/v2/models/asr/infer", json={"inputs": [{"name": "audio", "shape": [2], "datatype": "BYTES",
                                                                  "data": [base64.b64encode(one).decode(),
                                                                           base64.b64encode(two).decode()]}]}).json()
    assert files["outputs"][0]["data"] == [r["text"] for r in asr([one, two])]
    corrupt = client.post("/v2/models/asr/infer", json={"inputs": [{"name": "audio", "shape": [1], "datatype": "BYTES",
                                                                    "data": [base64.b64encode(b"RIFFnope").decode()]}]})
    assert corrupt.status_code == 400 and "input 0" in corrupt.json()["error"]
