"""The OpenAI-compatible routes (issue 14) through the official ``openai`` client against a real
server on 127.0.0.1, checked against the in-process pipelines on the same weights: embeddings
(float and the client's default base64) within 1e-5, greedy and seeded completions equal to
``pipe(...)``, streamed text equal to the whole answer, chat through the tokenizer's template,
transcriptions of an uploaded WAV; OpenAI-shaped errors for what Hub refuses."""

from __future__ import annotations

import re

import httpx
import pytest

import hub
from hub.serving import ServedModel
from tests.serving.conftest import fresh, serving, wav_bytes

openai = pytest.importorskip("openai")

CORPUS = [f"the {a} {v} the {b}." for a, v, b in zip("cat dog bird fox robot poet cat dog".split(),
                                                       "sees chases likes helps follows greets finds sees".split(),
                                                       "fox poet cat robot dog bird poet fox".split())] * 5
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")
TEXTS = ["the cat sees the dog.", "a fox.", "the robot helps the poet today."]


@pytest.fixture(scope="module")
def gen_folders(tmp_path_factory):
    """Two tiny GPTs (random weights, a BPE tokenizer trained on a toy corpus): one whose
    tokenizer has a chat template, one without."""
    from hub_text.pretrain import train_tokenizer

    root = tmp_path_factory.mktemp("openai")
    tokenizer = train_tokenizer(CORPUS, "bpe", vocab_size=300)
    config = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "max_positions": 128}
    plain = hub.create("text-generate", config=config, tokenizer=tokenizer, device="cpu", seed=0).save(root / "plain")
    tokenizer.chat_template = CHAT_TEMPLATE
    chat = hub.create("text-generate", config=config, tokenizer=tokenizer, device="cpu", seed=1).save(root / "chat")
    return {"plain": plain, "chat": chat}


@pytest.fixture(scope="module")
def server(folders, gen_folders):
    models = [ServedModel("emb", fresh(folders, "emb")), ServedModel("asr", fresh(folders, "asr")),
              ServedModel("gen", hub.load("text-generate", model=str(gen_folders["chat"]), device="cpu")),
              ServedModel("plain", hub.load("text-generate", model=str(gen_folders["plain"]), device="cpu"))]
    with serving(models, max_wait_ms=5) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def gen(gen_folders):
    return hub.load("text-generate", model=str(gen_folders["chat"]), device="cpu")


def test_models_are_listed(client):
    assert sorted(m.id for m in client.models.list().data) == ["asr", "emb", "gen", "plain"]
    assert client.models.retrieve("emb").owned_by == "hub"


def test_embeddings_equal_the_pipeline(client, server, pipes):
    want = pipes["emb"](TEXTS)
    got = client.embeddings.create(model="emb", input=TEXTS)  # the client asks for base64 and decodes it
    assert [d.index for d in got.data] == [0, 1, 2]
    for row, expected in zip(got.data, want):
        assert max(abs(a - b) for a, b in zip(row.embedding, expected)) <= 1e-5
    assert got.usage.prompt_tokens == sum(r.metadata["num_tokens"] for r in want) > 0
    floats = httpx.post(f"{server.url}/v1/embeddings", json={"model": "emb", "input": TEXTS[0],
                                                              "encoding_format": "float", "dimensions": 8}).json()
    short = floats["data"][0]["embedding"]
    assert len(short) == 8
    head = want[0][:8]
    if want[0].metadata["normalized"]:
        norm = sum(v * v for v in head) ** 0.5
        head = [v / norm for v in head]
    assert max(abs(a - b) for a, b in zip(short, head)) <= 1e-5


def test_greedy_and_seeded_completions_equal_the_pipeline(client, gen):
    got = client.completions.create(model="gen", prompt="the cat", max_tokens=6, temperature=0)
    want = gen("the cat", max_new_tokens=6, do_sample=False, return_full_text=False)
    assert got.choices[0].text == want["generated_text"]
    assert got.choices[0].finish_reason == ("length" if want.metadata["new_tokens"] >= 6 else "stop")
    assert got.usage.completion_tokens == want.metadata["new_tokens"]
    assert got.usage.prompt_tokens == len(gen.tokenizer("the cat")["input_ids"])
    sampled = client.completions.create(model="gen", prompt=["the dog", "a fox"], max_tokens=5, temperature=0.8,
                                        seed=3, top_p=0.9)
    # one request is one pipeline call (seeded once, as the Python call of the same list)
    expected = gen(["the dog", "a fox"], max_new_tokens=5, do_sample=True, temperature=0.8, top_p=0.9, seed=3,
                   return_full_text=False)
    assert [c.text for c in sampled.choices] == [e["generated_text"] for e in expected]
    echoed = client.completions.create(model="gen", prompt="the cat", max_tokens=6, temperature=0, echo=True)
    assert echoed.choices[0].text == "the cat" + want["generated_text"]


def test_n_choices_are_the_pipelines_samples(client, gen):
    """n > 1 is text-generate's num_return_sequences: n sampled choices per prompt, numbered
    prompt * n + sample, each the pipeline's sample under the same seed; usage counts them all."""
    got = client.completions.create(model="gen", prompt=["the dog", "a fox"], max_tokens=5, temperature=0.9,
                                    seed=4, n=3)
    want = gen(["the dog", "a fox"], max_new_tokens=5, do_sample=True, temperature=0.9, seed=4,
               num_return_sequences=3, return_full_text=False)
    assert [c.index for c in got.choices] == list(range(6))
    assert [c.text for c in got.choices] == [s["generated_text"] for per_prompt in want for s in per_prompt]
    assert len({c.text for c in got.choices[:3]}) > 1  # three draws, not one answer three times
    assert got.usage.completion_tokens == sum(s.metadata["new_tokens"] for per_prompt in want for s in per_prompt)
    messages = [{"role": "user", "content": "the cat sees"}]
    prompt = gen.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    chat = client.chat.completions.create(model="gen", messages=messages, max_tokens=5, temperature=0.9, seed=4,
                                          n=2)
    expected = gen(prompt, max_new_tokens=5, do_sample=True, temperature=0.9, seed=4, num_return_sequences=2,
                   return_full_text=False)
    assert [c.message.content for c in chat.choices] == [s["generated_text"] for s in expected]


def test_streamed_completion_is_the_whole_answer(client, gen):
    whole = gen("the robot", max_new_tokens=8, do_sample=False, return_full_text=False)["generated_text"]
    stream = client.completions.create(model="gen", prompt="the robot", max_tokens=8, temperature=0, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole and len([c for c in chunks if c.choices and c.choices[0].text]) >= 2
    assert chunks[-2].choices[0].finish_reason in ("length", "stop") and chunks[-1].usage.completion_tokens > 0


def test_chat_uses_the_template(client, gen):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the cat sees"}]
    prompt = gen.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    want = gen(prompt, max_new_tokens=7, do_sample=False, return_full_text=False)["generated_text"]
    got = client.chat.completions.create(model="gen", messages=messages, max_tokens=7, temperature=0)
    assert got.choices[0].message.role == "assistant" and got.choices[0].message.content == want
    stream = client.chat.completions.create(model="gen", messages=messages, max_completion_tokens=7, temperature=0,
                                            stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == want
    with pytest.raises(openai.BadRequestError, match="no chat template"):
        client.chat.completions.create(model="plain", messages=messages)


def test_transcription_of_an_upload_equals_the_pipeline(client, pipes, tmp_path):
    data, _ = wav_bytes(5)
    want = pipes["asr"](data)["text"]
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    with path.open("rb") as file:
        assert client.audio.transcriptions.create(model="asr", file=file).text == want
    with path.open("rb") as file:
        text = client.audio.transcriptions.create(model="asr", file=file, response_format="text")
    assert text.strip() == want.strip()
    words = pipes["asr"](data, return_timestamps="word")["chunks"]
    verbose = client.audio.transcriptions.create(model="asr", file=("clip.wav", data), response_format="verbose_json",
                                                 timestamp_granularities=["word"])
    assert verbose.text == want and [(w.word, w.start, w.end) for w in verbose.words] == \
        [(c["text"], c["timestamp"][0], c["timestamp"][1]) for c in words]


@pytest.mark.parametrize("route, body, status, match", [
    ("completions", {"model": "gen", "prompt": "a", "max_token": 3}, 400, "did you mean 'max_tokens'"),
    ("completions", {"model": "gen", "prompt": "a", "n": 2, "temperature": 0}, 400, "copies of one greedy answer"),
    ("completions", {"model": "gen", "prompt": "a", "n": 2, "stream": True}, 400, "not supported with stream"),
    ("completions", {"model": "gen", "prompt": "a", "n": 99}, 400, "more than this server gives"),
    ("completions", {"model": "gen", "prompt": [1, 2, 3]}, 400, "token ids is not supported"),
    ("completions", {"model": "gen", "prompt": "a", "temperature": 3}, 400, r"'temperature' must be a number in \[0, 2\]"),
    ("completions", {"model": "emb", "prompt": "a"}, 400, "model 'emb' serves 'text-embed'"),
    ("completions", {"model": "nope", "prompt": "a"}, 404, "no model is served as 'nope'"),
    ("completions", {"model": "gen", "prompt": ""}, 400, "input 0 is an empty string"),
    ("completions", {"model": "gen", "prompt": "a", "top_k": -1}, 400, "top_k"),
    ("embeddings", {"model": "emb", "input": []}, 400, "non-empty list of strings"),
    ("embeddings", {"model": "emb", "input": "a", "encoding_format": "int8"}, 400, "encoding_format"),
    ("chat/completions", {"model": "gen", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role 'wizard'"),
    ("chat/completions", {"model": "gen", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "f"}]},
     400, "'tools'"),
])
def test_refusals_are_openai_shaped(server, route, body, status, match):
    response = httpx.post(f"{server.url}/v1/{route}", json=body, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["request_id"]
    assert re.search(match, error["message"]), error["message"]


def test_stream_refusals_are_http_errors_before_the_stream(server):
    response = httpx.post(f"{server.url}/v1/completions", json={"model": "gen", "prompt": "a", "stream": True,
                                                                 "stop": [""]}, timeout=30)
    assert response.status_code == 400 and "stop" in response.json()["error"]["message"]


def test_api_key_with_the_openai_client(folders):
    with serving([ServedModel("emb", fresh(folders, "emb"))], api_key="s3cret") as running:
        with openai.OpenAI(base_url=f"{running.url}/v1", api_key="s3cret", max_retries=0) as good:
            assert good.embeddings.create(model="emb", input="a").data[0].embedding
        with openai.OpenAI(base_url=f"{running.url}/v1", api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError):
                bad.embeddings.create(model="emb", input="a")


def test_whisper_segments_in_verbose_json(tmp_path):
    """timestamp_granularities=['segment'] on a Whisper model: OpenAI's verbose_json segments,
    the pipeline's return_timestamps=True chunks (start, end, text) on the same upload."""
    import io
    import wave

    import numpy as np

    from tests.speech.whisper_checkpoints import RATE, audio, whisper_folder

    folder = whisper_folder(tmp_path / "whisper", suppress=[77, 110], begin_suppress=101, timestamps=True,
                            max_initial_timestamp_index=50)
    clip = audio(3.0, 0)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(RATE)
        out.writeframes((np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())
    data = buffer.getvalue()
    pipe = hub.load("speech-recognize", model=str(folder), device="cpu")
    want = pipe(data, return_timestamps=True)
    assert want["chunks"]
    with serving([ServedModel("whisper", hub.load("speech-recognize", model=str(folder), device="cpu"))]) as running:
        with openai.OpenAI(base_url=f"{running.url}/v1", api_key="unused", max_retries=0, timeout=60) as client:
            got = client.audio.transcriptions.create(model="whisper", file=("clip.wav", data),
                                                     response_format="verbose_json",
                                                     timestamp_granularities=["segment"])
            with pytest.raises(openai.BadRequestError, match="not both"):
                client.audio.transcriptions.create(model="whisper", file=("clip.wav", data),
                                                   response_format="verbose_json",
                                                   timestamp_granularities=["segment", "word"])
    assert got.text == want["text"]
    assert [(s.start, s.end, s.text) for s in got.segments] == [(c["timestamp"][0], c["timestamp"][1], c["text"])
                                                                for c in want["chunks"]]
