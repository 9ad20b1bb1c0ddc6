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
