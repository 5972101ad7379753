"""CallbackGroup: hooks reach the members that implement them, in order, and each member's
checkpoint state survives a save and load under its own key."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from pipeline.callback_group import HOOKS, CallbackGroup


class Recorder(Callback):
    def __init__(self, name: str, calls: list):
        self.name, self.calls = name, calls

    @property
    def state_key(self) -> str:
        return f"Recorder[{self.name}]"


class BatchEnd(Recorder):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.calls.append((self.name, "on_train_batch_end", batch_idx))


class BatchEndAndBackward(BatchEnd):
    def on_before_backward(self, trainer, pl_module, loss):
        self.calls.append((self.name, "on_before_backward", None))


class Counter(Callback):
    def __init__(self):
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state_dict):
        self.batches = state_dict["batches"]


def test_hooks_go_only_to_members_that_implement_them_in_order():
    calls: list = []
    group = CallbackGroup(BatchEndAndBackward("a", calls), Recorder("quiet", calls), BatchEnd("b", calls))
    group.on_train_batch_end(None, None, None, None, 3)
    group.on_before_backward(None, None, None)
    assert calls == [("a", "on_train_batch_end", 3), ("b", "on_train_batch_end", 3), ("a", "on_before_backward", None)]
    # a hook no member implements is the base class's no-op, not a forwarding call
    assert group.on_fit_start.__func__ is Callback.on_fit_start
    assert {"on_train_batch_end", "on_before_backward", "on_before_optimizer_step", "on_save_checkpoint", "setup"} <= set(HOOKS)


def test_members_need_distinct_state_keys():
    with pytest.raises(ValueError, match="distinct state keys"):
        CallbackGroup(Counter(), Counter())


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader():
    data = torch.utils.data.TensorDataset(torch.randn(12, 2))
    return torch.utils.data.DataLoader(data, batch_size=4)


def test_members_state_is_checkpointed_under_their_own_keys(tmp_path):
    calls: list = []
    counter = Counter()
    trainer = pl.Trainer(
        max_epochs=2, callbacks=[CallbackGroup(counter, BatchEnd("b", calls))], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(Tiny(), loader())
    assert counter.batches == 6 and len(calls) == 6  # Lightning called the members through the group
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)["callbacks"]
    assert saved == {"CallbackGroup": {"Counter": {"batches": 6}}}  # BatchEnd has no state: nothing saved

    restored = Counter()
    more = pl.Trainer(
        max_epochs=3, callbacks=[CallbackGroup(restored)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    more.fit(Tiny(), loader(), ckpt_path=tmp_path / "last.ckpt")
    assert restored.batches == 6 + 3  # loaded, then one more epoch
