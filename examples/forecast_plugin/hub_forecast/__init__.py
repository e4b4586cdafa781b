"""hub-plugin-forecast: an example third-party Hub plugin with a real model.

``time-series-forecast``: a series of numbers in, the next ``horizon`` values out, by a
patch Transformer (PatchTST-style) built on :mod:`hub.backbone`. The hooks live in
:mod:`hub_forecast.plugin` (no torch); the model in :mod:`hub_forecast.model` and the
pipeline in :mod:`hub_forecast.pipeline` load only when the task is used.
"""

__version__ = "0.1.0"
