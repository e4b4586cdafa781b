"""The one training loop behind every ``fine_tune`` and ``pretrain``."""

from hub.train.args import TrainingArguments
from hub.train.callbacks import Callback
from hub.train.state import TrainerState
from hub.train.trainer import Trainer, TrainResult

__all__ = ["Callback", "TrainResult", "Trainer", "TrainerState", "TrainingArguments"]
