"""Every bad input a user can give, end to end: exit 2, one line, no traceback.

Each case is a row of docs/bad-input.md, and the message there is checked
word for word against what the command prints, so the table cannot drift.
Cases run in a temporary folder (paths in messages are relative to it).
"""

import re
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gaverify.backends import memory
from gaverify.backends.trainer import classes
from gaverify.cli import app

DOCS = Path(__file__).parent.parent / "docs" / "bad-input.md"
QUICK = ["--set", "steps=1", "--set", "batch.accumulation=[2]"]
LOOP = [*QUICK, "--set", "backend=loop", "--set"]
STEPS = (
    "def raises(model, optimizer, micro_batches):\n    raise KeyError('input_ids')\n"
    "def idle(model, optimizer, micro_batches):\n    return 0.0\n"
    "def text(model, optimizer, micro_batches):\n    optimizer.step()\n    return 'low'\n"
)
PADDED = '{"tokens": ["ab", "cd"], "tags": [-100, -100]}\n' * 8  # nothing is labelled

# id: (files to write, arguments after `gaverify`)
CASES = {
    "missing-file": ({}, ["run", "missing.yaml"]),
    "unreadable-file": ({"latin1.yaml": b"name: caf\xe9\n"}, ["run", "latin1.yaml"]),
    "yaml-syntax": ({"s.yaml": "batch: {size: 8\n"}, ["run", "s.yaml"]),
    "yaml-tags": (
        {"s.yaml": "name: !!python/object/apply:os.system ['true']\n"},
        ["run", "s.yaml"],
    ),
    "unknown-key": ({"s.yaml": "batch: {szie: 8}\n"}, ["run", "s.yaml"]),
    "wrong-type": ({"s.yaml": "steps: many\n"}, ["run", "s.yaml"]),
    "out-of-range": ({}, ["run", "--set", "steps=0"]),
    "n-not-dividing": ({}, ["run", "--set", "batch.size=6", "--set", "batch.accumulation=[4]"]),
    "n-above-batch": ({}, ["run", "--set", "batch.accumulation=[16]"]),
    "empty-data": (
        {"empty.txt": "\n\n", "s.yaml": "data: {source: text, path: empty.txt}\n"},
        ["run", "s.yaml"],
    ),
    "all-padding": (
        {
            "pad.jsonl": PADDED,
            "s.yaml": "model: {task: token-classification}\n"
            "data: {source: jsonl, path: pad.jsonl}\nbatch: {size: 4, accumulation: [2]}\n",
        },
        ["run", "s.yaml"],
    ),
    "tokens-outside-vocab": (
        {"t.txt": "hello\nworld\n", "s.yaml": "data: {source: text, path: t.txt}\n"},
        ["run", "s.yaml", "--set", "model.config.vocab_size=100"],
    ),
    "unknown-model-type": ({}, ["run", "--set", "model.type=lama"]),
    "loss-not-importing": ({}, ["run", *QUICK, "--set", "variants=[fixed,'mylosses:nope']"]),
    "loss-raising": (
        {"mylosses.py": "def broken(outputs, labels, num_items_in_batch):\n    return 1 / 0\n"},
        ["run", *QUICK, "--set", "variants=[fixed,'mylosses:broken']"],
    ),
    "cuda-missing": ({}, ["run", "--device", "cuda"]),
    "memory": ({}, ["run"]),
    "lr-overflow": ({}, ["run", *QUICK, "--set", "steps=2", "--set", "optimizer.lr=1e38"]),
    "loop-step-missing": ({}, ["run", "--set", "backend=loop"]),
    "loop-step-raising": ({"mysteps.py": STEPS}, ["run", *LOOP, "loop.step=mysteps:raises"]),
    "loop-step-not-stepping": ({"mysteps.py": STEPS}, ["run", *LOOP, "loop.step=mysteps:idle"]),
    "loop-step-not-a-number": ({"mysteps.py": STEPS}, ["run", *LOOP, "loop.step=mysteps:text"]),
    "moe-double": ({}, ["run", "moe-qwen3", *QUICK, "--set", "dtype=float64"]),
    "moe-whole-losses": (
        {},
        [
            "run",
            "moe-qwen3",
            *QUICK,
            "--set",
            "backend=lightning",
            "--set",
            "variants=[installed]",
            "--set",
            "variant_expect={}",
        ],
    ),  # fmt: skip
    "trainer-class-not-trainer": (
        {},
        ["run", "trainer", "--set", "trainer.class=collections:OrderedDict"],
    ),
    "trainer-extra-missing": ({}, ["run", "trl-sft"]),
    "trainer-arg-unknown": ({}, ["run", "trainer", "--set", "trainer.args.max_grad_nrom=1"]),
    "trainer-setting-unknown": (
        {},
        ["run", "trl-grpo", "--set", "variants=[loss_typ=dapo]", "--set", "variant_expect={}"],
    ),
    "output-unwritable": ({"taken": "a file, not a folder\n"}, ["run", "--json", "taken/out.json"]),
    "output-missing-folder": ({}, ["run", "--junit", "/proc/nope/junit.xml"]),
    "precision-mixed-weights": (
        {},
        ["run", "--set", "precision=bf16-mixed", "--set", "dtype=float64"],
    ),
    "precision-half-on-cpu": ({}, ["run", "trainer", "--set", "trainer.args.fp16=true"]),
    "census-unknown-type": ({}, ["census", "--types", "lama"]),
    "launcher-single-process": ({}, ["run", *QUICK]),
    "launcher-world-not-dividing": ({}, ["run", "ddp", "--set", "batch.accumulation=[4]"]),
    "census-baseline-not-census": (
        {"base.json": '{"rows": []}'},
        ["census", "--types", "llama", "--baseline", "base.json"],
    ),
}


def _documented() -> dict[str, str]:
    """id -> message, from the table's rows: | `id` | input | `message` |"""
    rows = re.findall(r"^\| `([a-z-]+)` \|.*\| `(.+)` \|$", DOCS.read_text(), re.MULTILINE)
    return {case: message.replace("\\|", "|") for case, message in rows}


def test_the_table_lists_every_case_once():
    assert sorted(_documented()) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_documented_line_and_exit_2(case, tmp_path, monkeypatch):
    files, argv = CASES[case]
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a GPU machine
    if case == "memory":
        monkeypatch.setattr(memory, "available", lambda device: 1 << 20)
    if case.startswith("launcher-"):  # as rank 0 of torchrun's 4 ranks
        for key, value in {"RANK": "0", "WORLD_SIZE": "4", "MASTER_ADDR": "127.0.0.1"}.items():
            monkeypatch.setenv(key, value)
    if case == "trainer-extra-missing":  # as without TRL installed
        monkeypatch.setitem(sys.modules, "trl", None)
        monkeypatch.setattr(classes, "_missing", lambda package: True)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    shown = lines[0].replace(f"{tmp_path.resolve()}/", "")  # data paths are resolved
    parts = _documented()[case].split("…")  # … stands for version- or machine-specific text
    assert re.fullmatch("error: " + ".+".join(map(re.escape, parts)), shown), shown
