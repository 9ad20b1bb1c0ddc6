"""LightningModules for tests of backend: lightning (imported only there)."""

import lightning.pytorch as pl


class OwnLoss(pl.LightningModule):
    """A user's module: the model's own loss, no configure_optimizers (the
    scenario's optimizer is used)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        return self.model(**batch).loss


def not_a_module(model):
    return model


class Refuses(pl.LightningModule):
    def __init__(self, model):
        raise ValueError("no model for me")


class CtrlCOnSeventhBatch(OwnLoss):
    """Ctrl-C in its 7th training_step: with 2 steps, the first batch of the N=4 run."""

    calls = 0

    def training_step(self, batch, batch_idx):
        type(self).calls += 1
        if type(self).calls == 7:
            raise KeyboardInterrupt
        return super().training_step(batch, batch_idx)
