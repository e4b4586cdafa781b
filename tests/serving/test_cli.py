"""``hub serve`` as a command: a subprocess server that drains its in-flight requests on
SIGTERM, spec parsing (``NAME[=][TASK:]MODEL``), clear errors for bad specs and a missing
extra, and ``import hub`` / ``hub --help`` free of the serving libraries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import hub.cli
from hub.errors import InvalidInputError
from hub.serving.models import load_models, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def start_hub_serve(*args: str) -> tuple[subprocess.Popen, str, list[str]]:
    """``python -m hub serve ARGS --port 0``; returns the process, its URL and its stderr lines
    (read on in a thread)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", *args, "--port", "0", "--log-level", "info"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "listening on" in line:
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(120):
        proc.kill()
        raise AssertionError("hub serve did not start:\n" + "".join(lines))
    url = re.search(r"listening on (http://\S+)", "".join(lines)).group(1)
    return proc, url, lines


def test_sigterm_drains_in_flight_requests(folders, pipes):
    texts = [f"good food {i}" for i in range(6)]
    proc, url, lines = start_hub_serve(f"clf=text-classify:{folders['clf']}", "--max-wait-ms", "1500",
                                       "--always-wait")  # the six wait out the 1.5 s in the queue
    try:
        assert httpx.get(f"{url}/v2/health/ready", timeout=30).status_code == 200
        results: dict = {}

        def post(i: int) -> None:
            results[i] = httpx.post(f"{url}/models/clf/predict", json={"inputs": texts[i]}, timeout=30)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while 'hub_queue_depth{model="clf"} 6.0' not in httpx.get(f"{url}/metrics", timeout=30).text:
            assert time.monotonic() < deadline, "the requests never reached the queue"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # all six are waiting for their batch (1.5 s)
        deadline = time.monotonic() + 20
        while True:  # soon no longer accepting connections (how soon depends on the machine's load)
            try:
                httpx.get(f"{url}/v2/health/live", timeout=1)
            except httpx.TransportError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(lines)
    assert code == -signal.SIGTERM, log  # drained, then ended by the signal, as uvicorn does
    finishing = re.search(r"SIGTERM: no longer accepting connections; finishing (\d+) request\(s\) in flight", log)
    assert finishing and int(finishing.group(1)) >= 6, log  # (+1 when the last /metrics poll is still closing)
    assert "stopped: every request in flight was answered" in log
    expected = pipes["clf"](texts)
    for i, want in enumerate(expected):
        assert results[i].status_code == 200
        got = results[i].json()["outputs"]
        assert got["label"] == want["label"] and got["score"] == pytest.approx(want["score"], abs=1e-5)


def test_parse_spec_forms(folders, tmp_path):
    assert parse_spec("text-classify") == parse_spec("text-classify")
    plain = parse_spec("text-classify")
    assert (plain.name, plain.load_name, plain.model) == ("text-classify", "text-classify", None)
    named = parse_spec("clf=sentiment-analysis")
    assert (named.name, named.load_name, named.model) == ("clf", "sentiment-analysis", None)
    task_and_folder = parse_spec(f"clf=text-classify:{folders['clf']}")
    assert (task_and_folder.load_name, task_and_folder.model) == ("text-classify", str(folders["clf"]))
    repo = parse_spec("emb=text-embed:org/some-model")
    assert (repo.name, repo.load_name, repo.model) == ("emb", "text-embed", "org/some-model")
    assert parse_spec("text-embed:org/some-model").name == "some-model"
    hub_folder = parse_spec(str(folders["img"]))  # a folder Hub saved names its task
    assert (hub_folder.name, hub_folder.load_name) == ("img", "image-classify")


@pytest.mark.parametrize("spec, words", [
    ("=text-classify", ["NAME=MODEL needs both parts"]),
    ("clf=", ["NAME=MODEL needs both parts"]),
    ("bad name=text-classify", ["not usable in a URL"]),
    ("org/repo", ["name the task", "NAME=TASK:org/repo"]),
])
def test_bad_specs_are_refused_with_the_fix(spec, words):
    with pytest.raises(InvalidInputError) as info:
        load_models([spec])
    for word in words:
        assert word in str(info.value)


def test_a_transformers_folder_needs_its_task(folders):
    with pytest.raises(InvalidInputError, match="does not name a Hub task.*NAME=TASK:"):
        parse_spec(f"clf={folders['clf']}")


def test_duplicate_names_are_refused():
    with pytest.raises(InvalidInputError, match="two models would be served as 'a'"):
        load_models(["a=text-classify", "a=text-embed"])


def test_cli_errors_exit_2_without_a_traceback(capsys):
    assert hub.cli.main(["serve", "org/repo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "TASK:org/repo" in err and "Traceback" not in err
    assert hub.cli.main(["serve", "text-classify", "--max-batch-size", "0"]) == 2


def test_a_missing_extra_names_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert hub.cli.main(["serve", "text-classify"]) == 2
    err = capsys.readouterr().err
    assert "uvicorn" in err and "pip install 'hub-sdk[serve]'" in err


def test_import_hub_and_help_stay_free_of_the_serving_libraries():
    script = ("import sys, hub, hub.cli, hub.serving; hub.cli.build_parser().parse_args(['serve', 'x']); "
              "from hub.serving import ServeSettings; ServeSettings(); "
              "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'prometheus_client', 'torch') "
              "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "hub", "serve", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120).stdout
    for flag in ("--host", "--port", "--api-key", "--max-batch-size", "--max-wait-ms", "--no-batching"):
        assert flag in help_text


def test_hub_serve_is_the_python_entry():
    import hub
    import hub.serving
    from hub.serving.server import serve

    assert hub.serve is serve and hub.serving.serve is serve
    assert callable(hub.serving.build_app) and hub.serving.ServeSettings().host == "127.0.0.1"


def test_a_task_name_serves_its_default_model():
    import hub
    from tests.serving.conftest import serving

    with serving(["text-classify", "sentiment=sentiment-analysis"]) as server:
        models = httpx.get(f"{server.url}/models").json()["models"]
        got = httpx.post(f"{server.url}/models/sentiment/predict", json={"inputs": "great tea, fresh and fragrant"})
    assert [m["name"] for m in models] == ["text-classify", "sentiment"]
    assert models[0]["source"] == models[1]["source"]  # an alias: the same shipped default
    expected = hub.load("text-classify", device="cpu")("great tea, fresh and fragrant")
    assert got.json()["outputs"]["label"] == expected["label"]
    assert got.json()["outputs"]["score"] == pytest.approx(expected["score"], abs=1e-5)


def test_quantize_and_backend_reach_hub_load(monkeypatch):
    """``hub serve --quantize/--backend`` (and ``hub.serve(quantize=, backend=)``) load every
    model as ``hub.load`` would: the shipped int8 default computes in float when asked, and
    the options reach the loader from the command line unchanged."""
    from hub.serving import ServeSettings, build_app

    app = build_app(["text-classify"], ServeSettings(log_level="warning"), device="cpu", quantize="float")
    compute = app.state.hub.models["text-classify"].pipeline.metadata["compute"]
    assert compute["weights"] != "int8", compute
    app = build_app(["text-classify"], ServeSettings(log_level="warning"), device="cpu", quantize="int8")
    assert app.state.hub.models["text-classify"].pipeline.metadata["compute"]["weights"] == "int8"

    import hub.serving.server as server_module
    from hub.cli import main

    seen = {}
    monkeypatch.setattr(server_module, "serve", lambda models, settings, **options: seen.update(options))
    assert main(["serve", "text-embed", "--quantize", "int8", "--backend", "onnxruntime", "--device", "cpu"]) == 0
    assert seen["quantize"] == "int8" and seen["backend"] == "onnxruntime" and seen["device"] == "cpu"
