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
