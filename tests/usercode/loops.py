"""Step functions for tests of backend: loop: broken in the ways users break them."""


def raises(model, optimizer, micro_batches):
    raise RuntimeError("out of ideas")


def never_steps(model, optimizer, micro_batches):
    for batch in micro_batches:
        model(**batch).loss.backward()
    return 1.0


def returns_text(model, optimizer, micro_batches):
    for batch in micro_batches:
        (model(**batch).loss / len(micro_batches)).backward()
    optimizer.step()
    return "1.0"


def steps_every_micro_batch(model, optimizer, micro_batches):
    """No accumulation at all: an optimizer step per micro-batch."""
    logged = 0.0
    for batch in micro_batches:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        logged += loss.item() / len(micro_batches)
    return logged


SEEN: list[dict] = []


def records_keys(model, optimizer, micro_batches):
    """Remembers what it was given (the QA test reads SEEN), then sums."""
    SEEN.append({k: tuple(v.shape) for k, v in micro_batches[0].items()})
    for batch in micro_batches:
        (model(**batch).loss / len(micro_batches)).backward()
    optimizer.step()
    return 0.0


def scaled_token_weighted(model, optimizer, micro_batches):
    """gaverify.loops:token_weighted with its loss x4: defined otherwise than
    the token loss, but exactly invariant under accumulation."""
    import torch.nn.functional as F

    total = sum(int((mb["labels"][:, 1:] != -100).sum()) for mb in micro_batches)
    logged = 0.0
    for batch in micro_batches:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits[:, :-1]
        summed = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            batch["labels"][:, 1:].reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        loss = 4 * summed / total
        loss.backward()
        logged += loss.item()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return logged


# set by tests: the relative error of the weights under accumulation, in the
# gradient (what is backpropagated) and in the logged loss
GRAD_ERROR = 0.0
LOSS_ERROR = 0.0


def weights_off(model, optimizer, micro_batches):
    """The token-weighted loop whose weights are off by a common factor
    (1 + GRAD_ERROR in the gradient, 1 + LOSS_ERROR in the logged loss) when
    it accumulates: a divisor off by a fraction. Exact at N = 1."""
    import torch.nn.functional as F

    n = len(micro_batches)
    total = sum(int((mb["labels"][:, 1:] != -100).sum()) for mb in micro_batches)
    logged = 0.0
    for batch in micro_batches:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits[:, :-1].float()
        loss = (
            F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                batch["labels"][:, 1:].reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            / total
        )
        (loss * (1 + GRAD_ERROR if n > 1 else 1.0)).backward()
        logged += loss.item() * (1 + LOSS_ERROR if n > 1 else 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return logged
