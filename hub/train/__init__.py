"""The one training loop behind every ``fine_tune`` and ``pretrain``."""

from hub.train.args import TrainingArguments
from hub.train.trainer import Trainer, TrainResult

__all__ = ["TrainResult", "Trainer", "TrainingArguments"]
