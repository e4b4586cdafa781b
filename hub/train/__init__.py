"""The one training loop behind every ``fine_tune`` and ``pretrain``.

What a batch and a model's output must hold, and what callbacks see: :mod:`hub.train.contract`.
When the loop logs, evaluates, saves and stops: :mod:`hub.train.control`.
"""

from hub.train.args import TrainingArguments
from hub.train.callbacks import Callback
from hub.train.contract import ModelOutput, TrainerView
from hub.train.control import TrainerControl, TrainingSchedule
from hub.train.state import TrainerState
from hub.train.trainer import Trainer, TrainResult

__all__ = ["Callback", "ModelOutput", "TrainResult", "Trainer", "TrainerControl", "TrainerState", "TrainerView",
           "TrainingArguments", "TrainingSchedule"]
