"""The one training loop behind every ``fine_tune`` and ``pretrain``.

One process or many (``torchrun``: DDP or FSDP2), CPU or CUDA, fp32 / bf16 / fp16 with
a gradient scaler, gradient accumulation and clipping, AdamW with decay groups, warm-up
and decay, evaluation every epoch or every N steps with the best weights kept, early
stopping, resumable atomic checkpoints, callbacks for logging.

The contract (:mod:`hub.train.contract`) is the one transformers uses: a batch is a dict
of tensors, ``model(**batch)`` returns a dict with ``"loss"``; ``"logits"`` and
``batch["labels"]`` are read only when ``compute_metrics`` needs them. When to log,
evaluate, save and stop is decided by :class:`~hub.train.control.TrainingSchedule`.

Exact resume: the data order is a function of (seed, epoch, batch), and a checkpoint
holds the weights, optimizer, scheduler, scaler, every random generator and the
position in the epoch, taken at an optimizer-step boundary; a resumed run therefore
performs the same arithmetic as an uninterrupted one (bit-identical on CPU).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hub.errors import ConfigError, DataError, ModelLoadError
from hub.train import checkpoint as ckpt
from hub.train import distributed as dist_utils
from hub.train.args import TrainingArguments
from hub.train.callbacks import Callback, default_callbacks
from hub.train.contract import Batch, ComputeMetrics, TrainerView
from hub.train.control import TrainerControl, TrainingSchedule
from hub.train.sampling import ResumableBatchSampler, epoch_seed
from hub.train.state import TrainerState
from hub.train.trackers import tracker_callbacks

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns (every ``fine_tune`` / ``pretrain`` returns it too).

    Attributes:
        best_metric, best_epoch, best_step: the best value of the monitored metric
            (``metric_for_best`` of the evaluation; without evaluation data the training
            loss, lower being better) and where it was.
        epochs_run, steps: epochs begun and optimizer steps taken (a resumed run counts
            from the start of the original run).
        history: one record per evaluation (``step``, ``epoch``, ``train_loss``, ``eval_*``).
        stopped_early: early stopping ended the run.
        train_seconds: wall time of this call.
        resumed_from, last_checkpoint: the checkpoint folder resumed from and the last one
            written (None: none).
        arguments: the run's TrainingArguments as a dict (what the model card lists).
        train_examples, eval_examples: how many examples the Trainer was given (after the
            task's featurisation: blocks for pretraining, rows for fine-tuning).
    """

    best_metric: float | None
    best_epoch: int | None
    epochs_run: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    train_seconds: float = 0.0
    best_step: int | None = None
    resumed_from: str | None = None
    last_checkpoint: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    train_examples: int | None = None
    eval_examples: int | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)


def decay_parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay matrices only; never norms, biases or embeddings."""
    no_decay_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.Embedding)) or "Norm" in type(module).__name__:
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    for _name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if id(param) in no_decay_ids or param.ndim < 2 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)
    return factor


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Switch on recomputation in every shared-backbone Transformer (or the model's own switch)."""
    from hub.backbone.transformer import Transformer

    found = [m for m in model.modules() if isinstance(m, Transformer)]
    for module in found:
        module.config.gradient_checkpointing = True
    if not found:
        switch = getattr(model, "gradient_checkpointing_enable", None)
        if not callable(switch):
            raise ConfigError(f"gradient_checkpointing=True, but {type(model).__name__} has no Hub Transformer "
                              "and no gradient_checkpointing_enable() method.")
        switch()


class Trainer:
    """Train ``model`` on ``train_data`` (a sequence of examples) batched by ``collate``.

    What a batch and the model's output must hold is :mod:`hub.train.contract`: a batch is
    a dict of tensors, ``model(**batch)`` returns a dict with ``"loss"``; ``"logits"`` and
    ``batch["labels"]`` are needed only by ``compute_metrics``. When to log, evaluate, save
    and stop is :class:`hub.train.control.TrainingSchedule`'s decision.

    Args:
        model: the module to train (``model(**batch) -> {"loss", ...}``); it ends training
            in eval mode with the best weights (by ``args.metric_for_best``).
        args: the run's :class:`~hub.train.TrainingArguments`.
        train_data: the training examples (indexable, with ``len``); what ``collate`` takes.
        collate: examples -> a batch (a dict of tensors, examples along the first dimension).
        eval_data: evaluation examples, scored every epoch or every ``args.eval_steps``.
        compute_metrics: ``(logits, labels) -> {name: value}`` over the whole evaluation
            set, added to the evaluation's ``loss`` (then batches need ``labels`` and
            outputs ``logits``).
        save_best: called as ``save_best(model, output_dir / "best")`` on rank 0 whenever
            the monitored metric improves (with ``output_dir``; not under FSDP).
        callbacks: :class:`~hub.train.Callback` objects, called after the defaults the
            arguments ask for (learning rate and throughput in the logs, early stopping,
            JSONL/TensorBoard logs, progress bar); each hook gets a
            :class:`~hub.train.contract.TrainerView` and the :class:`~hub.train.TrainerState`.
        lengths: one per training example, for ``group_by_length`` (default: read from each
            example's ``input_ids``).
        eval_collate: batches evaluation examples when they need another shape than
            training's (default: ``collate``).

    Raises:
        ConfigError: ``args`` is not a TrainingArguments, fp16 without CUDA, or a
            ``metric_for_best`` other than loss with ``eval_data`` but no ``compute_metrics``.
    """

    def __init__(self, model: nn.Module, args: TrainingArguments, *, train_data: Sequence[Any],
                 collate: Callable[[list[Any]], Batch], eval_data: Sequence[Any] | None = None,
                 compute_metrics: ComputeMetrics | None = None,
                 save_best: Callable[[nn.Module, Path], None] | None = None,
                 callbacks: Sequence[Callback] = (), lengths: Sequence[int] | None = None,
                 eval_collate: Callable[[list[Any]], Batch] | None = None) -> None:
        if not isinstance(args, TrainingArguments):
            raise ConfigError(f"args must be a hub.train.TrainingArguments, got {type(args).__name__}.")
        if eval_data is not None and compute_metrics is None and args.metric_for_best != "loss":
            raise ConfigError(f"metric_for_best={args.metric_for_best!r} is not among the evaluation's metrics "
                              "(loss): pass compute_metrics that returns it, or metric_for_best='loss'.")
        self.model, self.args = model, args
        self.train_data, self.eval_data = train_data, eval_data
        self.collate, self.compute_metrics, self.save_best = collate, compute_metrics, save_best
        self.lengths = lengths
        self.eval_collate = eval_collate or collate  # evaluation batches may need another shape
        self.env = dist_utils.env_from_torchrun()
        self.device = dist_utils.device_for(self.env, args.device)
        if args.fp16 and self.device.type != "cuda":
            raise ConfigError("fp16 needs a CUDA device (it relies on a gradient scaler); on CPU use bf16=True.")
        use_bf16 = args.bf16 if args.bf16 is not None else self.device.type == "cuda"
        self.autocast_dtype = torch.float16 if args.fp16 else torch.bfloat16 if use_bf16 else None
        self.callbacks: list[Callback] = [*default_callbacks(args), *tracker_callbacks(args), *callbacks]
        self.state = TrainerState()
        self.strategy = "none"
        self.wrapped: nn.Module = model
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.last_seq_len = 0
        self._ddp: nn.Module | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self.resumed_from: Path | None = None  # the checkpoint this run resumed from
        self.view = TrainerView(self)  # what callbacks see of this trainer

    # -- small helpers --------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.env.is_main

    @property
    def unwrapped_model(self) -> nn.Module:
        return ckpt.unwrap(self.wrapped)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _emit(self, event: str, *extra: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self.view, self.state, *extra)

    def _log(self, record: dict[str, Any]) -> None:
        self._emit("on_log", record)

    # -- training -------------------------------------------------------------------------
    def train(self) -> TrainResult:
        """Run to ``max_steps``/``epochs`` (or an early stop), resuming first when
        ``args.resume_from_checkpoint`` says so; the model ends with the best weights.

        Returns:
            A :class:`TrainResult`: the best metric and its epoch/step, epochs and steps run,
            one history record per evaluation, whether it stopped early, the checkpoint it
            resumed from and the last one written.

        Raises:
            DataError: the training data is empty.
            ConfigError: a batch's output has no ``"loss"`` (or, with ``compute_metrics``, an
                evaluation batch has no ``labels`` or output no ``logits``), or the checkpoint
                to resume from belongs to another model or run.
            ModelLoadError: the checkpoint to resume from is damaged.
        """
        created = dist_utils.setup(self.env, self.device)
        try:
            return self._train()
        finally:
            if self.strategy == "ddp":  # DDP's wrapper needs the process group; the module does not
                self.wrapped = self.model
            dist_utils.teardown(created)

    def _prepare(self) -> tuple[DataLoader, ResumableBatchSampler]:
        args, env = self.args, self.env
        if not len(self.train_data):
            raise DataError("The training data is empty; pass at least one example.")
        seed_everything(args.seed)
        if self.device.type == "cuda" and args.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if args.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        model = self.model.to(self.device)
        self.strategy = dist_utils.strategy(args.distributed, env)
        if self.strategy == "fsdp":  # every rank starts from rank 0's weights
            for tensor in itertools.chain(model.parameters(), model.buffers()):
                torch.distributed.broadcast(tensor.data, src=0)
        wrapped = dist_utils.wrap(model, self.strategy, self.device)
        self._ddp = wrapped if self.strategy == "ddp" else None
        self.wrapped = torch.compile(wrapped) if args.compile else wrapped

        lengths = self.lengths
        if args.group_by_length and lengths is None:
            try:
                lengths = [len(example["input_ids"]) for example in self.train_data]
            except (KeyError, TypeError, IndexError):
                raise ConfigError("group_by_length needs examples with 'input_ids' or Trainer(lengths=...).") from None
        sampler = ResumableBatchSampler(len(self.train_data), args.batch_size, seed=args.seed, rank=env.rank,
                                        world_size=env.world_size, lengths=lengths if args.group_by_length else None)
        # the loader's own generator: creating an iterator draws a seed from it, which must not
        # come from (and shift) the global generator that dropout uses
        self._loader_generator = torch.Generator()
        loader = DataLoader(self.train_data, batch_sampler=sampler, collate_fn=self.collate,
                            num_workers=args.num_workers, pin_memory=self.device.type == "cuda",
                            generator=self._loader_generator)
        steps_per_epoch = math.ceil(len(sampler) / args.gradient_accumulation_steps)
        total_steps = args.max_steps or math.ceil(steps_per_epoch * args.epochs)
        # fused AdamW: one kernel per parameter group (on a 2-core CPU ~6x faster than foreach for
        # BERT-base sizes, where the optimizer step rivals forward+backward); FSDP's DTensors use foreach
        self.optimizer = torch.optim.AdamW(decay_parameter_groups(model, args.weight_decay), lr=args.learning_rate,
                                           fused=self.device.type in ("cuda", "cpu") and self.strategy != "fsdp")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(args.schedule, int(args.warmup_ratio * total_steps), total_steps))
        self.scaler = torch.amp.GradScaler("cuda") if args.fp16 else None
        self.state = TrainerState(total_steps=total_steps)
        self._best_state = None
        return loader, sampler

    def _train(self) -> TrainResult:
        args = self.args
        loader, sampler = self._prepare()
        resumed = ckpt.resolve_resume(args.resume_from_checkpoint, args.output_dir)
        self.resumed_from = resumed  # the JSONL logger drops the rows logged after it
        if resumed is not None:
            self._load_checkpoint(resumed, batches_per_epoch=len(sampler))
        state = self.state
        self.schedule = schedule = TrainingSchedule(args, batches_per_epoch=len(sampler),
                                                    checkpointing=bool(args.output_dir and args.save_checkpoints))
        self._sums = _RunningSums(state.interval_loss_sum, self.device)
        self._emit("on_train_begin")
        start = time.perf_counter()
        while not schedule.should_stop(state):
            sampler.set_epoch(state.epoch, state.batches_in_epoch)
            self._loader_generator.manual_seed(epoch_seed(args.seed, state.epoch))  # worker seeds per epoch
            for batch in loader:
                if not self._forward_backward(batch):  # accumulating gradients: no step yet
                    continue
                self._optimizer_step()
                state.global_step += 1
                state.samples_seen += self._sums.take_samples()
                self._emit("on_step_end")
                self._act(schedule.after_step(state))
                if schedule.should_leave_epoch(state):
                    break
            self._act(schedule.after_epoch(state))  # the end of an epoch, or of training part-way through one
        self._restore_best()
        self._emit("on_train_end")
        self.model.eval()
        last = ckpt.latest(args.output_dir) if schedule.checkpointing else None
        return TrainResult(best_metric=state.best_metric, best_epoch=state.best_epoch,
                           epochs_run=state.epoch + (1 if state.batches_in_epoch else 0), steps=state.global_step,
                           history=state.history, stopped_early=state.stopped_early,
                           train_seconds=time.perf_counter() - start, best_step=state.best_step,
                           resumed_from=str(resumed) if resumed else None, last_checkpoint=str(last) if last else None,
                           arguments=args.to_dict(), train_examples=len(self.train_data),
                           eval_examples=len(self.eval_data) if self.eval_data is not None else None)

    def _forward_backward(self, batch: Batch) -> bool:
        """One micro-batch: forward and backward (DDP/FSDP synchronise gradients only on the
        last micro-batch of a step). Returns whether an optimizer step is due."""
        state, accumulation = self.state, self.args.gradient_accumulation_steps
        state.batches_in_epoch += 1
        at_boundary = state.batches_in_epoch % accumulation == 0 or self.schedule.epoch_done(state)
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self._sums.count_batch(batch, self.env.world_size)
        self.last_seq_len = _seq_len(batch) or self.last_seq_len
        sync = contextlib.nullcontext()
        if self._ddp is not None and not at_boundary:
            sync = self._ddp.no_sync()
        elif self.strategy == "fsdp":
            self.model.set_requires_gradient_sync(at_boundary)
        with sync:
            with self.autocast():
                out = self.wrapped(**batch)
            loss = _loss_of(out, "a training")
            scaled = loss / accumulation
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        self._sums.add_loss(loss, state)
        return at_boundary

    def _act(self, control: TrainerControl) -> None:
        """Carry out the schedule's decisions in order: bring the state's counters up to date
        (the one place they reach it), log, evaluate, end the epoch, save."""
        if not control.touches_state:
            return
        state = self.state
        self._sums.flush(state, self.env.world_size)
        if control.should_log:
            self._log({"step": state.global_step, "epoch": state.epoch + 1, "loss": self._sums.window_mean()})
        if control.should_evaluate:
            self._evaluate_and_track(train_loss=self._sums.interval_mean(state))
        if control.should_end_epoch:
            self._emit("on_epoch_end")
            state.epoch += 1
            state.batches_in_epoch = 0
        if control.leaving_epoch:  # decided last: the evaluation and on_epoch_end may have ended training
            control.should_save = self.schedule.save_on_leaving(state)
        if control.should_save:
            self._save_checkpoint()

    def _optimizer_step(self) -> None:
        args, optimizer = self.args, self.optimizer
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if args.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.wrapped.parameters(), args.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        self.scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    # -- evaluation and the best model --------------------------------------------------
    def _evaluate_and_track(self, train_loss: float | None) -> None:
        state, args = self.state, self.args
        record: dict[str, Any] = {"epoch": state.epoch + 1, "step": state.global_step}
        if train_loss is not None:
            record["train_loss"] = train_loss
        metrics: dict[str, float] = {}
        if self.eval_data is not None:
            metrics = self.evaluate()
            record.update({f"eval_{k}": v for k, v in metrics.items()})
        if self.eval_data is not None and args.metric_for_best not in metrics:
            raise ConfigError(f"metric_for_best={args.metric_for_best!r} is not among the evaluation's metrics "
                              f"({', '.join(sorted(metrics))}): name one of them, or pass compute_metrics that "
                              "returns it.")
        # no evaluation data: the training loss picks the best weights, and lower is better whatever the metric
        if self.eval_data is not None:
            monitored, greater = metrics[args.metric_for_best], bool(args.greater_is_better)
        else:
            monitored, greater = record.get("train_loss"), False
        if monitored is not None:
            if _improved(monitored, state.best_metric, greater):
                state.best_metric, state.best_step, state.best_epoch = monitored, state.global_step, state.epoch + 1
                state.evals_without_improvement = 0
                self._keep_best()
            else:
                state.evals_without_improvement += 1
        state.history.append(record)
        self._log(dict(record))
        self._emit("on_evaluate", metrics)

    def _keep_best(self) -> None:
        full = ckpt.model_state(self.wrapped, self.strategy)  # collective under FSDP
        self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in full.items()}
        if self.save_best is not None and self.args.output_dir and self.strategy != "fsdp" and self.is_main:
            self.save_best(self.model, Path(self.args.output_dir) / "best")
        dist_utils.barrier()

    def _restore_best(self) -> None:
        if self._best_state is not None:
            ckpt.load_model_state(self.wrapped, self._best_state, self.strategy)

    @torch.no_grad()
    def evaluate(self, data: Sequence[Any] | None = None) -> dict[str, float]:
        """Score ``data`` (default: ``eval_data``); each process scores a contiguous share
        and the results are gathered, so every process gets the metrics of the whole set.

        Args:
            data: evaluation examples (what ``eval_collate`` takes).

        Returns:
            ``{"loss": mean loss per example}`` plus what ``compute_metrics`` returns (it
            gets every batch's ``out["logits"]`` and ``batch["labels"]``, concatenated).

        Raises:
            ConfigError: no data; an output without ``"loss"``; with ``compute_metrics``, a
                batch without ``"labels"`` or an output without ``"logits"``.
        """
        import torch.distributed as dist

        data = self.eval_data if data is None else data
        if data is None:
            raise ConfigError("evaluate() needs data: pass eval_data to the Trainer or data=... here.")
        # DDP's forward broadcasts buffers (a collective) and ranks may score different numbers of
        # batches: evaluate its inner module. FSDP must go through its wrapper (it gathers weights).
        model = self.model if self.strategy != "fsdp" else self.wrapped
        was_training = model.training
        model.eval()
        distributed = dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        share = math.ceil(len(data) / world)
        indices = list(range(rank * share, min(len(data), (rank + 1) * share)))
        loader = DataLoader(torch.utils.data.Subset(data, indices), batch_size=self.args.eval_batch_size,
                            shuffle=False, collate_fn=self.eval_collate, generator=torch.Generator())
        total_loss, count, all_logits, all_labels = 0.0, 0, [], []
        # under FSDP every rank must run the same number of forwards (they gather weights)
        batches = math.ceil(share / self.args.eval_batch_size) if self.strategy == "fsdp" else None
        iterator = iter(loader)
        for _ in itertools.count() if batches is None else range(batches):
            batch = next(iterator, None)
            dummy = batch is None
            if dummy:
                if batches is None:
                    break
                batch = self.eval_collate([data[0]])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self.autocast():
                out = model(**batch)
            if dummy:
                continue
            n = int(batch["labels"].shape[0]) if "labels" in batch else _batch_size(batch)
            total_loss += _loss_of(out, "an evaluation").item() * n
            count += n
            if self.compute_metrics is not None:  # logits and labels: only what the metrics need
                logits, labels = _metric_inputs(out, batch)
                all_logits.append(logits.float().cpu())
                all_labels.append(labels.cpu())
        model.train(was_training)
        total_loss, count = dist_utils.all_reduce_sum([total_loss, count], self.device)
        metrics = {"loss": total_loss / max(1, count)}
        if self.compute_metrics is not None:
            parts = dist_utils.all_gather_objects((all_logits, all_labels))
            logits = torch.cat([t for part in parts for t in part[0]])
            labels = torch.cat([t for part in parts for t in part[1]])
            metrics.update(self.compute_metrics(logits, labels))
        return metrics

    # -- checkpoints ----------------------------------------------------------------------
    def _save_checkpoint(self) -> Path | None:
        args, state = self.args, self.state
        model_state = ckpt.model_state(self.wrapped, self.strategy)  # collectives: every rank
        keep_optimizer = args.keeps_optimizer  # the same on every rank: the collective runs on all or none
        optimizer_state = ckpt.optimizer_state(self.wrapped, self.optimizer, self.strategy) if keep_optimizer else None
        path = None
        if self.is_main:
            files: dict[str, Any] = {"model.safetensors": model_state, "rng.pt": ckpt.rng_state()}
            if keep_optimizer:  # what exact resume needs; for AdamW twice the weights' size
                files.update({"optimizer.pt": optimizer_state, "scheduler.pt": self.scheduler.state_dict()})
                if self.scaler is not None:
                    files["scaler.pt"] = self.scaler.state_dict()
            if self._best_state is not None and state.best_step == state.global_step:
                state.best_checkpoint = f"step-{state.global_step:08d}"
            meta = {**state.to_dict(), "world_size": self.env.world_size, "args": args.to_dict(),
                    "has_optimizer": keep_optimizer}
            path = ckpt.write(args.output_dir, state.global_step, files, meta)
            keep = ckpt.checkpoint_dir(args.output_dir) / state.best_checkpoint if state.best_checkpoint else None
            ckpt.rotate(args.output_dir, args.save_total_limit, keep=keep)
        dist_utils.barrier()
        if path is not None:
            self._emit("on_save", path)
        return path

    def _load_checkpoint(self, path: Path, *, batches_per_epoch: int) -> None:
        """Restore a checkpoint, reading and checking every file against this run before any is
        applied: a corrupt file is a ModelLoadError, a checkpoint of another model or run (other
        shapes, another optimizer, a position past this run's epoch) a ConfigError; both name the
        folder, the problem and the fix, never a raw KeyError/RuntimeError from torch."""
        meta = _read_trainer_state(path)
        state = TrainerState.from_dict(meta)
        if state.batches_in_epoch >= batches_per_epoch:
            raise _mismatch(path, f"it stopped {state.batches_in_epoch} batches into epoch {state.epoch + 1}, but an "
                                  f"epoch of this run has {batches_per_epoch} batches: the training data, batch size "
                                  "or number of processes differ from the run that wrote it.")
        if meta.get("world_size", 1) != self.env.world_size and meta.get("batches_in_epoch"):
            logger.warning("Resuming a run of %s processes on %s: the data order inside the interrupted epoch "
                           "differs from the original run.", meta.get("world_size"), self.env.world_size)
        if meta.get("has_optimizer") is False and not (path / "optimizer.pt").is_file():
            raise ConfigError(
                f"Cannot resume from {path}: it holds the weights but not the optimizer and scheduler states an "
                "exact resume needs (the run wrote them only on request: save_optimizer=None saves them when "
                "save_steps or resume_from_checkpoint is given). Start fresh (resume_from_checkpoint=None), or train "
                "with save_steps=N or save_optimizer=True to write resumable checkpoints.")
        weights = _read_file(path, "model.safetensors", ckpt.load_weights)
        self._check_weights(path, "model.safetensors", weights)
        optimizer_state = _read_file(path, "optimizer.pt", ckpt.load_pt)
        self._check_optimizer(path, optimizer_state)
        scheduler_state = _read_file(path, "scheduler.pt", ckpt.load_pt)
        groups = len(self.optimizer.param_groups)
        if not isinstance(scheduler_state, dict) or not isinstance(scheduler_state.get("base_lrs"), list) \
                or len(scheduler_state["base_lrs"]) != groups:
            raise _mismatch(path, f"scheduler.pt is not the state of a learning-rate schedule over {groups} "
                                  "parameter groups (it comes from another optimizer or another program).")
        rng = _read_file(path, "rng.pt", ckpt.load_pt)
        if not isinstance(rng, dict) or "python" not in rng or not isinstance(rng.get("torch"), torch.Tensor):
            raise _corrupt(path, "rng.pt does not hold the random generators' states ('python', 'torch').")
        scaler_state = None
        if self.scaler is not None and (path / "scaler.pt").is_file():
            scaler_state = _read_file(path, "scaler.pt", ckpt.load_pt)
        best_state = None
        if state.best_checkpoint:
            best = path.parent / state.best_checkpoint
            if (best / "model.safetensors").is_file():
                best_state = _read_file(best, "model.safetensors", ckpt.load_weights)
                self._check_weights(best, "model.safetensors", best_state)
        # everything read and checked: apply it
        try:
            ckpt.load_model_state(self.wrapped, weights, self.strategy)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise _mismatch(path, f"model.safetensors does not fit this model ({_first_line(exc)}).") from None
        try:
            ckpt.load_optimizer_state(self.wrapped, self.optimizer, optimizer_state, self.strategy)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise _mismatch(path, f"optimizer.pt does not fit this model's optimizer ({_first_line(exc)}).") from None
        try:
            self.scheduler.load_state_dict(scheduler_state)
            if scaler_state is not None:
                self.scaler.load_state_dict(scaler_state)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _corrupt(path, f"scheduler.pt or scaler.pt cannot be restored ({_first_line(exc)}).") from None
        total = self.state.total_steps
        self.state = state
        self.state.total_steps = total
        if best_state is not None:
            self._best_state = best_state
        try:
            ckpt.set_rng_state(rng)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise _corrupt(path, f"rng.pt cannot be restored ({_first_line(exc)}).") from None
        logger.info("Resumed from %s (step %d, epoch %d).", path, self.state.global_step, self.state.epoch + 1)

    def _check_weights(self, path: Path, name: str, weights: dict[str, torch.Tensor]) -> None:
        """The checkpoint's tensors have this model's names and shapes (else: another model or size)."""
        if self.strategy == "fsdp":  # sharded parameters: load_model_state's own error is wrapped
            return
        expected = {k: tuple(v.shape) for k, v in self.unwrapped_model.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in weights.items()}
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        resized = [k for k in expected if k in got and expected[k] != got[k]]
        if not (missing or unexpected or resized):
            return
        parts = []
        if resized:
            k = resized[0]
            parts.append(f"{len(resized)} tensor(s) of another size, e.g. {k!r}: {list(got[k])} in the checkpoint, "
                         f"{list(expected[k])} in this model")
        if missing:
            parts.append(f"{len(missing)} of this model's tensors missing, e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown tensor(s), e.g. {unexpected[0]!r}")
        raise _mismatch(path, f"{name} holds a different model ({'; '.join(parts)}): the checkpoint was written by "
                              "a model of another size or architecture.")

    def _check_optimizer(self, path: Path, saved: Any) -> None:
        """optimizer.pt is an optimizer state for exactly this model's parameter groups and shapes."""
        if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) \
                or not isinstance(saved.get("param_groups"), list) \
                or not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved["param_groups"]):
            raise _corrupt(path, "optimizer.pt is not an optimizer state ('state' and 'param_groups').")
        if self.strategy == "fsdp":  # keyed by parameter names there; load_optimizer_state's error is wrapped
            return
        mine = self.optimizer.param_groups
        theirs = saved["param_groups"]
        sizes = [len(g["params"]) for g in theirs], [len(g["params"]) for g in mine]
        if sizes[0] != sizes[1]:
            raise _mismatch(path, f"optimizer.pt is another model's optimizer: its parameter groups hold {sizes[0]} "
                                  f"parameters, this model's {sizes[1]}.")
        for group, (their_group, my_group) in enumerate(zip(theirs, mine)):
            for key, param in zip(their_group["params"], my_group["params"]):
                entry = saved["state"].get(key, {})
                if not isinstance(entry, dict):
                    raise _corrupt(path, f"optimizer.pt: the state of parameter {key!r} is not a dict.")
                for name, value in entry.items():
                    if isinstance(value, torch.Tensor) and value.ndim and tuple(value.shape) != tuple(param.shape):
                        raise _mismatch(path, f"optimizer.pt is another model's optimizer: {name!r} of parameter "
                                              f"{key} (group {group}) is {list(value.shape)}, the parameter "
                                              f"{list(param.shape)}.")


_RESUME_FIX = ("Start fresh (resume_from_checkpoint=None, or another output_dir) or point resume_from_checkpoint "
               "at a checkpoint this model and data wrote.")


def _mismatch(path: Path, problem: str) -> ConfigError:
    return ConfigError(f"Cannot resume from {path}: {problem} {_RESUME_FIX}")


def _corrupt(path: Path, problem: str) -> ModelLoadError:
    return ModelLoadError(f"Cannot resume from {path}: {problem} The checkpoint is damaged: resume from an earlier "
                          f"one under {path.parent}, or start fresh (resume_from_checkpoint=None).")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _read_file(path: Path, name: str, reader: Callable[[Path], Any]) -> Any:
    """``reader(path / name)``, with a missing or unreadable file as a ModelLoadError naming it."""
    if not (path / name).is_file():
        raise _corrupt(path, f"{name} is missing.")
    try:
        return reader(path / name)
    except Exception as exc:  # safetensors, pickle (weights_only) and zip errors have many types
        raise _corrupt(path, f"{name} cannot be read ({type(exc).__name__}: {_first_line(exc)}).") from None


def _read_trainer_state(path: Path) -> dict[str, Any]:
    import json

    file = path / "trainer_state.json"
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"trainer_state.json is not readable JSON ({_first_line(exc)}).") from None
    problem = TrainerState.problem(meta)
    if problem is None and "world_size" in meta and (not isinstance(meta["world_size"], int)
                                                     or isinstance(meta["world_size"], bool) or meta["world_size"] < 1):
        problem = f"'world_size' is {meta['world_size']!r}, not a positive integer"
    if problem:
        raise _corrupt(path, f"trainer_state.json: {problem}.")
    return meta


class _RunningSums:
    """The loop's running sums, kept on the device between the moments they reach the state
    (a ``.item()`` per batch would wait for the device every batch)."""

    def __init__(self, interval_loss_sum: float, device: torch.device) -> None:
        self.device = device
        self.window_loss = torch.zeros((), dtype=torch.float64, device=device)  # since the previous log
        self.window_batches = 0
        # since the previous evaluation (an epoch's mean with per-epoch evaluation); resumed from the state
        self.interval_loss = torch.tensor(interval_loss_sum, dtype=torch.float64, device=device)
        self.samples = 0  # all processes, since the previous optimizer step
        self.tokens = torch.zeros((), dtype=torch.long, device=device)  # this process, since the previous flush

    def count_batch(self, batch: Batch, world_size: int) -> None:
        self.samples += _batch_size(batch) * world_size
        self.tokens += _token_count(batch)  # a device tensor: no host sync per batch

    def add_loss(self, loss: torch.Tensor, state: TrainerState) -> None:
        self.window_loss += loss.detach().double()
        self.interval_loss += loss.detach().double()
        self.window_batches += 1
        state.interval_loss_count += 1

    def take_samples(self) -> int:
        samples, self.samples = self.samples, 0
        return samples

    def flush(self, state: TrainerState, world_size: int) -> None:
        """Bring ``state``'s counters up to date (what a log record or a checkpoint reads)."""
        state.interval_loss_sum = self.interval_loss.item()
        state.tokens_seen += int(self.tokens) * world_size
        self.tokens.zero_()

    def window_mean(self) -> float:
        """The mean training loss since the previous log (all processes); restarts the window."""
        total, count = dist_utils.all_reduce_sum([self.window_loss.item(), self.window_batches], self.device)
        self.window_loss.zero_()
        self.window_batches = 0
        return total / max(1, count)

    def interval_mean(self, state: TrainerState) -> float:
        """The mean training loss since the previous evaluation (all processes); restarts the interval."""
        total, count = dist_utils.all_reduce_sum([self.interval_loss.item(), state.interval_loss_count], self.device)
        self.interval_loss.zero_()
        state.interval_loss_sum, state.interval_loss_count = 0.0, 0
        return total / max(1, count)


def _loss_of(out: Any, phase: str) -> torch.Tensor:
    """``out["loss"]``, or a ConfigError saying what the model must return (see hub.train.contract)."""
    if not isinstance(out, Mapping) or "loss" not in out:
        got = f"keys {sorted(out)}" if isinstance(out, Mapping) else type(out).__name__
        raise ConfigError(f"The model returned no 'loss' on {phase} batch (got {got}). model(**batch) must "
                          "return a dict with a scalar 'loss' (see hub.train.contract); a model that computes "
                          "it from labels needs batches that carry them.")
    return out["loss"]


def _metric_inputs(out: Mapping[str, Any], batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out["logits"], batch["labels"])`` for compute_metrics, or a ConfigError naming the missing one."""
    if "logits" not in out:
        raise ConfigError(f"compute_metrics needs the model's 'logits', but model(**batch) returned only "
                          f"{sorted(out)} on an evaluation batch: return 'logits' from the model, or drop "
                          "compute_metrics (the evaluation loss needs neither).")
    if "labels" not in batch:
        raise ConfigError(f"compute_metrics needs 'labels' in every evaluation batch, but collate returned only "
                          f"{sorted(batch)}: add them in the (eval_)collate function, or drop compute_metrics.")
    return out["logits"], batch["labels"]


def _improved(value: float, best: float | None, greater: bool) -> bool:
    if best is None:
        return True
    return value > best if greater else value < best


def _batch_size(batch: Batch) -> int:
    first = next(iter(batch.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 0


def _token_count(batch: Batch) -> torch.Tensor | int:
    if "attention_mask" in batch:
        return batch["attention_mask"].sum()
    if "input_ids" in batch:
        return batch["input_ids"].numel()
    return 0


def _seq_len(batch: Batch) -> int:
    ids = batch.get("input_ids")
    return int(ids.shape[-1]) if ids is not None and ids.ndim >= 2 else 0


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    return {"accuracy": (logits.argmax(-1) == labels).float().mean().item()}


__all__ = ["TrainResult", "Trainer", "accuracy", "decay_parameter_groups", "lr_lambda", "seed_everything"]
