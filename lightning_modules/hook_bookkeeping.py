"""Lightning's per-hook bookkeeping on the module, without ``nn.Module.__setattr__``.

Around every hook call (about twenty a step of a manually optimised GAN, a dozen of an
automatically optimised model) Lightning records the hook's name on the module,
``module._current_fx_name = name``, and restores the previous one afterwards: it is what
``self.log`` checks. On an ``nn.Module`` each such write goes through ``Module.__setattr__``,
which looks the name up among the parameters, sub-modules and buffers first: 1.9 µs a write
against 0.2 µs, some 80 µs of a 2-D GAN's step (``benchmarks/training_loop.py``). The value
is a plain string (or ``None``), never a parameter, module or buffer, so this mixin writes it
to the instance's ``__dict__``, where ``Module.__setattr__`` would have put it too. Place it
first in a ``LightningModule`` subclass's bases.
"""

from __future__ import annotations

from typing import Any


class FastHookBookkeeping:
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)
