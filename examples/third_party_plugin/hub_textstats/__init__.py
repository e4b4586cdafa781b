"""hub-plugin-textstats: an example third-party Hub plugin providing ``text-stats``.

Importing this package is cheap on purpose: the hooks live in :mod:`hub_textstats.plugin`
and the pipeline (which needs torch, through :mod:`hub.pipeline`) is only imported when
``hub.load("text-stats")`` runs.
"""

__version__ = "0.1.0"
