"""The ``Trainer``'s profiler when the settings ask for none.

Lightning wraps every hook call (a manually optimised GAN makes about twenty a step) in
``with trainer.profiler.profile(label):``. Without a profiler it uses ``PassThroughProfiler``,
whose ``profile`` is still a generator-based context manager, created, entered and left at
each call although it records nothing. ``NoProfiler`` hands back one shared
``contextlib.nullcontext`` instead. ``trainer.profiler`` in ``params.yaml`` (or ``--set``)
names one of Lightning's profilers (``simple``, ``advanced``, ``pytorch``) when you want
the report.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from pytorch_lightning.profilers import PassThroughProfiler

_NOTHING = nullcontext()  # stateless: one instance serves every call, nested ones included


class NoProfiler(PassThroughProfiler):
    def profile(self, action_name: str) -> AbstractContextManager:
        return _NOTHING
