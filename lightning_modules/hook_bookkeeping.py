"""Lightning's per-hook bookkeeping on the module, without ``nn.Module.__setattr__``.

Around every hook call Lightning records the hook's name on the module,
``module._current_fx_name = name``, and restores the previous one afterwards: it is what
``self.log`` checks. That is 45 writes a training step (counted for a 2-D GAN and an LSTM
classifier). On an ``nn.Module`` each goes through ``Module.__setattr__``, which looks the
name up among the parameters, sub-modules and buffers first: 2.0 µs a write against 0.2 µs
here, some 80 µs a step. The value
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
