"""Issue 13, item 2 (remaining parts), for every registered task: ``[]`` gives ``[]``; an
iterable input streams its results in order, batch by batch, without being read first;
``is_batch`` decides what is a batch; call defaults given at ``hub.load`` are checked at
load and used by every call."""

from __future__ import annotations

import types

import pytest

import hub
from hub.errors import InputTypeError, InvalidInputError
from tests.test_hardening_calls import VALID, pipelines, registered_tasks  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a second valid input per task (so that order can be seen)
OTHER = {"text-classify": "awful tea", "token-classify": "tea was awful", "fill-mask": "[MASK] tea",
         "text-embed": "awful tea", "text-generate": "the tea", "recommend": "2", "text-stats": "One. Two! Three?",
         "summarize": "awful tea", "translate": "awful tea", "text2text-generate": "awful tea",
         "zero-shot-classify": "awful tea"}


def _pipe(task, pipelines):  # noqa: F811
    if task == "text-stats":
        pytest.importorskip("hub_textstats")
    return pipelines(task)


@pytest.mark.parametrize("task", registered_tasks())
def test_an_empty_list_gives_an_empty_list(task, pipelines):  # noqa: F811
    assert _pipe(task, pipelines)([]) == []


@pytest.mark.parametrize("task", registered_tasks())
def test_a_generator_streams_in_order_batch_by_batch(task, pipelines):  # noqa: F811
    pipe = _pipe(task, pipelines)
    good = VALID[task][0]
    inputs = [good, OTHER.get(task, good)] * 3
    expected = pipe(list(inputs), batch_size=2, progress=False)
    pulled: list[int] = []

    def source():
        for index, item in enumerate(inputs):
            pulled.append(index)
            yield item

    stream = pipe(source(), batch_size=2)
    assert isinstance(stream, types.GeneratorType) and pulled == []  # nothing read before the first next()
    first = next(stream)
    assert pulled == [0, 1]  # one batch read, not the whole input
    assert [first, *stream] == expected


def test_a_streamed_bad_input_is_named_by_its_index_in_the_stream(pipelines):  # noqa: F811
    pipe = pipelines("text-classify")
    stream = pipe(iter(["good tea", "bad tea", "ok", 7]), batch_size=2)
    with pytest.raises(InputTypeError, match="input 3 is a int"):
        list(stream)
    with pytest.raises(InvalidInputError, match="did you mean 'top_k'"):  # keywords checked at the call
        pipe(iter(["good tea"]), topk=2)


def test_is_batch_is_the_one_rule_and_can_be_overridden(pipelines):  # noqa: F811
    pipe = pipelines("text-stats") if _has_textstats() else pytest.skip("hub_textstats not installed")

    class Joined(type(pipe)):
        task = pipe.task

        def is_batch(self, inputs):  # a single input is a list of strings, joined
            return isinstance(inputs, list) and bool(inputs) and isinstance(inputs[0], list)

        def preprocess(self, inputs, **params):
            return super().preprocess([" ".join(x) if isinstance(x, list) else x for x in inputs], **params)

    joined = Joined(pipe.options, device="cpu")
    one = joined(["One.", "Two!"])
    assert isinstance(one, dict) and one["sentences"] == 2
    assert [r["words"] for r in joined([["a b"], ["c"]])] == [2, 1]
    assert pipe(("a b", "c"))[1]["words"] == 1  # the default: a tuple is a batch too


def _has_textstats() -> bool:
    try:
        import hub_textstats  # noqa: F401
    except ImportError:
        return False
    return True


def test_call_defaults_at_load(tmp_path):
    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(tmp_path, max_positions=32)
    pipe = hub.load("text-classify", model=str(tmp_path), device="cpu", top_k=2, batch_size=1)
    assert pipe.call_defaults == {"top_k": 2, "batch_size": 1}
    two = pipe("good tea")
    assert len(two) == 2 and [len(r) for r in pipe(["good tea", "bad"])] == [2, 2]
    assert isinstance(pipe("good tea", top_k=1), dict)  # the call's keyword wins
    assert len(pipe(iter(["good tea", "bad"]), top_k=None).__next__()) == 3
    with pytest.raises(InvalidInputError, match="unknown keyword 'topk' for text-classify; did you mean 'top_k'"):
        hub.load("text-classify", model=str(tmp_path), device="cpu", topk=2)
    with pytest.raises(InvalidInputError, match="top_k must be an integer >= 1"):
        hub.load("text-classify", model=str(tmp_path), device="cpu", top_k=0)
    with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1"):
        hub.load("text-classify", model=str(tmp_path), device="cpu", batch_size=0)


def test_call_defaults_at_load_for_an_overridden_call():
    rec = hub.load("recommend", device="cpu", k=3)
    assert len(rec("1")) == 3 and len(rec("1", k=2)) == 2
    with pytest.raises(InvalidInputError, match="did you mean 'k'"):
        hub.load("recommend", device="cpu", kk=3)
