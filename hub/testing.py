"""``hub.testing``: the conformance kit every task, built-in or third-party, passes.

A plugin author runs it against their task, with public API only::

    import hub.testing

    hub.testing.check_task("my-task", inputs=["a", "bb", "ccc"], config={"hidden_size": 16})

or subclasses the pytest class (each check is one test)::

    class TestMyTask(hub.testing.TaskConformance):
        task = "my-task"
        inputs = ["a", "bb", "ccc"]
        config = {"hidden_size": 16}
        train_data = [("a", "x"), ("bb", "y")]

The checks, in order (:data:`CHECKS`):

``create``
    ``hub.create(task, config=...)`` builds a tiny model (or, for a task that cannot be
    created from scratch, ``pipeline=`` / the example's ``"pipeline"`` / ``hub.load(task)``).
``single``
    One input gives one result: a dict or a list carrying ``.metadata``.
``batch``
    A list gives a list of results of the same length, in the same order, and each equals
    that input's result alone (batching never changes an answer; floats within ``tolerance``).
``empty``
    ``pipe([])`` returns ``[]``.
``unknown_keyword``
    An unknown call keyword is refused with :class:`hub.errors.InvalidInputError`.
``wrong_type``
    A list holding one input of the wrong type is refused with a
    :class:`hub.errors.HubError` whose message names that input's index (``input N``).
``save_load``
    ``pipe.save(folder)`` then ``hub.load(task, model=folder)`` gives identical outputs.
``train``
    Where the task supports it, a two-step ``fine_tune`` (else ``pretrain``) on tiny data
    runs, then save/load again gives identical outputs.

A task supplies its tiny example through an optional classmethod on its pipeline,
``conformance_example()``, returning a dict with any of ``"config"``, ``"tokenizer"``,
``"inputs"``, ``"wrong_input"``, ``"train"`` (data), ``"train_verb"`` (``"fine_tune"`` or
``"pretrain"``), ``"train_args"`` (keywords of that verb), ``"call_defaults"`` (keywords every
call needs, e.g. ``candidate_labels``); arguments given to
:func:`check_task` win over it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import hub
from hub.errors import HubError, InvalidInputError

#: the checks :func:`check_task` runs, in order
CHECKS: tuple[str, ...] = ("create", "single", "batch", "empty", "unknown_keyword", "wrong_type", "save_load",
                           "train")
#: the keyword no task takes (the unknown-keyword check)
UNKNOWN_KEYWORD = "no_such_keyword_xyz"
#: training keywords the ``train`` check passes unless the example or the caller overrides them
TRAIN_ARGS: dict[str, Any] = {"max_steps": 2, "batch_size": 2, "progress": False, "save_checkpoints": False}


class ConformanceError(AssertionError):
    """A conformance check failed; the message names the task, the check and what differed."""


@dataclass
class ConformanceReport:
    """What :func:`check_task` did.

    Attributes:
        task: the task checked.
        passed: the checks that passed, in order.
        skipped: ``{check: why}`` for checks that do not apply (e.g. ``train`` on a task with
            neither ``fine_tune`` nor ``pretrain``).
    """

    task: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def task_example(task: str) -> dict[str, Any]:
    """The task's own tiny example: its pipeline's ``conformance_example()``, or ``{}``.

    Args:
        task: a registered task name (or alias).

    Returns:
        A dict with the keys described in this module's docstring (possibly empty).
    """
    cls = pipeline_class(task)
    hook = getattr(cls, "conformance_example", None)
    example = hook() if callable(hook) else {}
    if not isinstance(example, Mapping):
        raise ConformanceError(f"{task}: {cls.__name__}.conformance_example() must return a dict, "
                               f"got {type(example).__name__}.")
    return dict(example)


def pipeline_class(task: str) -> type:
    """The pipeline class registered for ``task``."""
    from hub.specs import load_object

    entry = hub.get_registry().task(task)
    return load_object(entry.spec.pipeline)


def assert_same(actual: Any, expected: Any, *, tolerance: float = 1e-5, where: str = "result") -> None:
    """Raise :class:`ConformanceError` unless ``actual`` equals ``expected``: the same structure
    (dicts, lists, tuples), equal strings and integers, floats (and tensors or arrays) within
    ``tolerance`` (absolute, and relative to the larger magnitude).

    Args:
        actual: the value found.
        expected: the reference value.
        tolerance: the largest float difference allowed.
        where: a path naming the compared value in the message.
    """
    if hasattr(actual, "detach") or hasattr(actual, "__array__"):
        actual = _to_list(actual)
    if hasattr(expected, "detach") or hasattr(expected, "__array__"):
        expected = _to_list(expected)
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping) or set(actual) != set(expected):
            got = sorted(map(str, actual)) if isinstance(actual, Mapping) else type(actual).__name__
            raise ConformanceError(f"{where}: expected keys {sorted(map(str, expected))}, got {got}.")
        for key in expected:
            assert_same(actual[key], expected[key], tolerance=tolerance, where=f"{where}[{key!r}]")
        return
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            raise ConformanceError(f"{where}: expected {len(expected)} items, got {actual!r:.200}.")
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, tolerance=tolerance, where=f"{where}[{index}]")
        return
    if isinstance(expected, float) or isinstance(actual, float):
        if not isinstance(actual, (int, float)) or not isinstance(expected, (int, float)):
            raise ConformanceError(f"{where}: expected {expected!r}, got {actual!r:.200}.")
        if math.isnan(expected) and math.isnan(actual):
            return
        if abs(actual - expected) > tolerance * max(1.0, abs(expected), abs(actual)):
            raise ConformanceError(f"{where}: expected {expected!r}, got {actual!r} (tolerance {tolerance}).")
        return
    if actual != expected:
        raise ConformanceError(f"{where}: expected {expected!r:.200}, got {actual!r:.200}.")


def _to_list(value: Any) -> Any:
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
    return value.tolist() if hasattr(value, "tolist") else value


class _Run:
    """One :func:`check_task` run: the pipeline, its reference outputs and the report."""

    def __init__(self, task: str, *, inputs: Sequence[Any] | None, config: dict[str, Any] | None,
                 tokenizer: Any, train_data: Any, train_verb: str | None, train_args: dict[str, Any] | None,
                 wrong_input: Any, pipeline: Any, tolerance: float, folder: Path, device: str,
                 call_defaults: dict[str, Any] | None = None) -> None:
        example = task_example(task)
        self.task = task
        self.inputs = list(inputs if inputs is not None else example.get("inputs", ()))
        if len(self.inputs) < 2:
            raise ConformanceError(f"{task}: check_task needs at least two inputs (inputs=[...] or the pipeline's "
                                   "conformance_example()['inputs']).")
        self.config = config if config is not None else example.get("config")
        self.tokenizer = tokenizer if tokenizer is not None else example.get("tokenizer")
        self.train_data = train_data if train_data is not None else example.get("train")
        self.train_verb = train_verb or example.get("train_verb")
        self.device = device
        self.train_args = {**TRAIN_ARGS, "device": device, **example.get("train_args", {}), **(train_args or {})}
        self.wrong_input = wrong_input if wrong_input is not None else example.get("wrong_input", object())
        self.pipeline = pipeline if pipeline is not None else example.get("pipeline")
        self.call_defaults = dict(call_defaults if call_defaults is not None else example.get("call_defaults", {}))
        self.tolerance = tolerance
        self.folder = folder
        self.pipe: Any = None
        self.reference: list[Any] = []
        self.report = ConformanceReport(task)

    def fail(self, check: str, message: str) -> ConformanceError:
        return ConformanceError(f"{self.task}: check {check!r} failed: {message}")

    # -- the checks -----------------------------------------------------------------------
    def create(self) -> None:
        cls = pipeline_class(self.task)
        if self.pipeline is not None:
            factory = callable(self.pipeline) and not hasattr(self.pipeline, "task")
            self.pipe = self.pipeline() if factory else self.pipeline
        elif "from_scratch" in cls.supported_verbs():
            self.pipe = hub.create(self.task, config=self.config, tokenizer=self.tokenizer, device=self.device, seed=0)
        else:
            self.pipe = hub.load(self.task, device=self.device)
        if self.call_defaults:
            self.pipe.set_call_defaults({**self.pipe.call_defaults, **self.call_defaults})

    def single(self) -> None:
        result = self.pipe(self.inputs[0])
        if not isinstance(result, (dict, list)):
            raise self.fail("single", f"one input gave a {type(result).__name__}; expected a dict or a list.")
        if not hasattr(result, "metadata"):
            raise self.fail("single", f"the result ({type(result).__name__}) has no .metadata.")
        self.reference = [self.pipe(item) for item in self.inputs]
        assert_same(result, self.reference[0], tolerance=self.tolerance, where="single result, called twice")

    def batch(self) -> None:
        results = self.pipe(list(self.inputs), batch_size=2)
        if not isinstance(results, list) or len(results) != len(self.inputs):
            raise self.fail("batch", f"a list of {len(self.inputs)} inputs gave {results!r:.200}.")
        try:
            assert_same(results, self.reference, tolerance=self.tolerance, where="batch vs each input alone")
            assert_same(self.pipe(list(reversed(self.inputs))), list(reversed(self.reference)),
                        tolerance=self.tolerance, where="reversed batch vs each input alone")
        except ConformanceError as exc:
            raise self.fail("batch", str(exc)) from None

    def empty(self) -> None:
        result = self.pipe([])
        if result != [] or not isinstance(result, list):
            raise self.fail("empty", f"pipe([]) gave {result!r:.200}; expected [].")

    def unknown_keyword(self) -> None:
        try:
            self.pipe(self.inputs[0], **{UNKNOWN_KEYWORD: 1})
        except InvalidInputError as exc:
            if UNKNOWN_KEYWORD not in str(exc):
                raise self.fail("unknown_keyword", f"the error does not name the keyword: {exc}") from None
            return
        except Exception as exc:  # noqa: BLE001 - the wrong error type is the failure reported
            raise self.fail("unknown_keyword",
                            f"raised {type(exc).__name__}: {exc}; expected InvalidInputError.") from None
        raise self.fail("unknown_keyword", f"{UNKNOWN_KEYWORD}=1 was accepted silently.")

    def wrong_type(self) -> None:
        index = len(self.inputs[:2])
        batch = [*self.inputs[:2], self.wrong_input]
        try:
            self.pipe(batch)
        except HubError as exc:
            if f"input {index}" not in str(exc):
                raise self.fail("wrong_type", f"the error does not name 'input {index}': {exc}") from None
            return
        except Exception as exc:  # noqa: BLE001
            raise self.fail("wrong_type", f"raised {type(exc).__name__}: {exc}; expected a hub.errors.HubError "
                                          f"naming input {index}.") from None
        raise self.fail("wrong_type", f"input {index} ({self.wrong_input!r:.60}) was accepted.")

    def save_load(self, name: str = "saved", check: str = "save_load") -> None:
        folder = self.pipe.save(self.folder / name)
        again = hub.load(self.task, model=str(folder), device=self.device, **self.call_defaults)
        try:
            assert_same([again(item) for item in self.inputs], self.reference, tolerance=self.tolerance,
                        where="outputs after save and load")
        except ConformanceError as exc:
            raise self.fail(check, str(exc)) from None
        self.pipe = again

    def train(self) -> None:
        verbs = type(self.pipe).supported_verbs()
        verb = self.train_verb or next((v for v in ("fine_tune", "pretrain") if v in verbs), None)
        if verb is None:
            self.report.skipped["train"] = "the task has neither fine_tune() nor pretrain()"
            return
        if self.train_data is None:
            self.report.skipped["train"] = "no training data given (train_data= or conformance_example()['train'])"
            return
        args = dict(self.train_args)
        args.setdefault("output_dir", str(self.folder / "run"))
        getattr(self.pipe, verb)(self.train_data, **args)
        self.reference = [self.pipe(item) for item in self.inputs]
        self.save_load("trained", check="train")


def check_task(task: str, inputs: Sequence[Any] | None = None, *, config: dict[str, Any] | None = None,
               tokenizer: Any = None, train_data: Any = None, train_verb: str | None = None,
               train_args: dict[str, Any] | None = None, wrong_input: Any = None,
               pipeline: Any = None, tolerance: float = 1e-5, checks: Sequence[str] | None = None,
               folder: str | Path | None = None, device: str = "cpu",
               call_defaults: dict[str, Any] | None = None) -> ConformanceReport:
    """Run the conformance checks (:data:`CHECKS`) on ``task``; raise at the first failure.

    Args:
        task: the registered task name (or alias).
        inputs: at least two valid inputs, ideally of different lengths (default: the
            pipeline's ``conformance_example()["inputs"]``).
        config: the tiny model config ``hub.create`` gets (default: the example's).
        tokenizer: for tasks that read text and are created from scratch.
        train_data: tiny training data for ``fine_tune`` / ``pretrain`` (default: the
            example's ``"train"``; without any, the ``train`` check is skipped).
        train_verb: ``"fine_tune"`` or ``"pretrain"`` (default: fine_tune where supported).
        train_args: keywords of the training verb over :data:`TRAIN_ARGS` (two steps) and ``device``.
        wrong_input: an input of the wrong type (default ``object()``).
        pipeline: a pipeline (or a no-argument callable returning one) to check instead of
            ``hub.create``: for tasks that cannot be created from scratch.
        tolerance: how far floats may differ (batched vs alone, before vs after saving).
        checks: a subset of :data:`CHECKS` to run (the ones they need run too).
        folder: where to save (default: a temporary folder, removed afterwards).
        device: where the model runs and trains (``"cuda"`` checks the GPU path; TF32 or
            reduced precision there may need a larger ``tolerance``).
        call_defaults: call keywords every call needs (zero-shot-classify's
            ``candidate_labels``), given as defaults at creation and at ``hub.load`` after
            saving, as a user would (default: the example's ``"call_defaults"``).

    Returns:
        A :class:`ConformanceReport` of the checks passed and skipped.

    Raises:
        ConformanceError: the first failed check, naming it and what differed.
    """
    wanted = set(CHECKS if checks is None else checks)
    unknown = wanted - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose among {', '.join(CHECKS)}.")
    # a check needs the reference outputs of "single" and the pipeline of "create"
    needed = wanted | {"create", "single"} if wanted - {"create"} else wanted
    with tempfile.TemporaryDirectory(prefix="hub-conformance-") as tmp:
        run = _Run(task, inputs=inputs, config=config, tokenizer=tokenizer, train_data=train_data,
                   train_verb=train_verb, train_args=train_args, wrong_input=wrong_input, pipeline=pipeline,
                   tolerance=tolerance, folder=Path(folder) if folder is not None else Path(tmp), device=device,
                   call_defaults=call_defaults)
        for check in CHECKS:
            if check in needed:
                getattr(run, check)()
                if check not in run.report.skipped:
                    run.report.passed.append(check)
    return run.report


class TaskConformance:
    """A pytest class to subclass: one test per check of :func:`check_task`.

    Set the class attributes (only ``task`` is required; the rest default to the
    pipeline's ``conformance_example()``)::

        class TestMyTask(hub.testing.TaskConformance):
            task = "my-task"
            inputs = ["a", "bb"]
    """

    task: ClassVar[str] = ""
    inputs: ClassVar[Sequence[Any] | None] = None
    config: ClassVar[dict[str, Any] | None] = None
    tokenizer: ClassVar[Any] = None
    train_data: ClassVar[Any] = None
    train_verb: ClassVar[str | None] = None
    train_args: ClassVar[dict[str, Any] | None] = None
    device: ClassVar[str] = "cpu"
    call_defaults: ClassVar[dict[str, Any] | None] = None

    def run_checks(self, *checks: str) -> ConformanceReport:
        """Run ``checks`` (and those they need) with this class's attributes."""
        return check_task(self.task, self.inputs, config=self.config, tokenizer=self.tokenizer,
                          train_data=self.train_data, train_verb=self.train_verb, train_args=self.train_args,
                          checks=checks, device=self.device, call_defaults=self.call_defaults)

    def test_single_result(self) -> None:
        self.run_checks("single")

    def test_batch_equals_each_alone(self) -> None:
        self.run_checks("batch")

    def test_empty_list(self) -> None:
        self.run_checks("empty")

    def test_unknown_keyword_refused(self) -> None:
        self.run_checks("unknown_keyword")

    def test_wrong_type_names_index(self) -> None:
        self.run_checks("wrong_type")

    def test_save_load_identical(self) -> None:
        self.run_checks("save_load")

    def test_train_then_save_load(self) -> None:
        self.run_checks("train")


__all__ = ["CHECKS", "ConformanceError", "ConformanceReport", "TaskConformance", "TRAIN_ARGS", "assert_same",
           "check_task", "task_example"]

