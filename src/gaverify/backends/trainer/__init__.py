"""The trainer backend: the installed transformers.Trainer (or a subclass), GA off vs on.

dispatch.py is the entry point; classes.py resolves trainer.class and
trainer.config (checked before any model is built); families.py holds what
TRL's trainers need beyond the Trainer's; engine.py trains one watched run
(shared); single.py compares runs in one process; ranks.py runs the
accumulated ones on W processes; fitting.py fits a trainer's own
micro-batches; quiet.py silences the engines; compat.py holds what differs
between transformers releases.
"""
