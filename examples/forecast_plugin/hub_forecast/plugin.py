"""The plugin module named by the ``hub.plugins`` entry point: data only, no torch import."""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ArchitectureSpec, TaskSpec

TASK = "time-series-forecast"
ARCHITECTURE = "patch-forecaster"


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=TASK,
            pipeline="hub_forecast.pipeline:ForecastPipeline",
            description="Forecast the next values of a numeric series (patch Transformer on hub.backbone).",
            aliases=("forecast",),
            default_model=None,  # no shipped weights: hub.create(TASK) then fine_tune
            modality="time-series",
            pipeline_tag="time-series-forecasting",
        ),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    # builder: "module:attr" of a callable(config: dict) -> torch.nn.Module; hub.load and
    # hub.create build the model through it (weights are assigned afterwards).
    return [
        ArchitectureSpec(ARCHITECTURE, "hub_forecast.model:build_patch_forecaster",
                         "Instance-normalised patches -> linear embedding -> hub.backbone.Transformer -> "
                         "linear head over all patches (PatchTST-style)."),
    ]
