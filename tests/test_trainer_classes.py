"""trainer.class and trainer.config: any Trainer subclass, checked before anything is built."""

import subprocess
import sys
import time

import pytest
import transformers

from gaverify.backends.trainer import classes
from gaverify.backends.trainer.classes import resolve
from gaverify.errors import GaverifyError
from tests.conftest import small_scenario

VERSION = transformers.__version__
REWARD = "gaverify.backends.trainer.rewards:even_tokens"


def _scenario(variants=None, **trainer):
    fields = {"backend": "trainer", "trainer": trainer}
    if variants is not None:
        fields.update(variants=variants, variant_expect={})
    return small_scenario(**fields)


def _names(found):
    return found.trainer.__name__, found.config.__name__, found.family_name


def test_the_default_is_the_installed_trainer_with_its_arguments():
    assert _names(resolve(_scenario(), [])) == ("Trainer", "TrainingArguments", "Trainer")


@pytest.mark.parametrize(
    "path, config",
    [("trl:SFTTrainer", "SFTConfig"), ("trl:DPOTrainer", "DPOConfig"),
     ("trl:GRPOTrainer", "GRPOConfig")],
)  # fmt: skip
def test_a_trl_trainer_brings_its_own_config_class_and_family(path, config):
    found = resolve(_scenario(**{"class": path}), [])
    assert _names(found) == (path.split(":")[1], config, path.split(":")[1])
    assert found.describe() == f"trl.{path.split(':')[1]} (config trl.{config})"


def test_a_subclass_without_an_annotation_is_found_by_its_bases():
    found = resolve(_scenario(**{"class": "tests.usercode.trainers:MySFTTrainer"}), [])
    assert _names(found) == ("MySFTTrainer", "SFTConfig", "SFTTrainer")


def test_trainer_config_overrides_the_config_class():
    found = resolve(_scenario(config="trl:SFTConfig"), [])
    assert found.config.__name__ == "SFTConfig" and found.family_name == "Trainer"


@pytest.mark.parametrize(
    "trainer, message",
    [
        ({"class": "collections:OrderedDict"},
         "trainer.class: 'collections:OrderedDict' is not a subclass of transformers.Trainer "
         "(type OrderedDict)"),
        ({"class": "tests.usercode.trainers:NOT_A_CLASS"},
         "trainer.class: 'tests.usercode.trainers:NOT_A_CLASS' is not a function or class (int)"),
        ({"class": "nosuchpkg:Trainer"},
         "trainer.class: cannot import 'nosuchpkg:Trainer': ModuleNotFoundError: No module "
         "named 'nosuchpkg'"),
        ({"config": "collections:OrderedDict"},
         "trainer.config: 'collections:OrderedDict' is not a subclass of "
         "transformers.TrainingArguments"),
        ({"class": "trl:SFTTrainer", "reward_funcs": [REWARD]},
         "trainer.reward_funcs: SFTTrainer takes no reward functions (trl:GRPOTrainer does)"),
        ({"args": {"max_grad_nrom": 1.0}},
         f"trainer.args.max_grad_nrom: TrainingArguments of transformers {VERSION} has no "
         "argument 'max_grad_nrom' (did you mean max_grad_norm?)"),
    ],
)  # fmt: skip
def test_a_bad_class_or_argument_is_one_line_naming_the_key(trainer, message):
    with pytest.raises(GaverifyError) as caught:
        resolve(_scenario(**trainer), [])
    assert str(caught.value) == message


def test_a_setting_variant_names_an_argument_of_the_config_class():
    scenario = _scenario(["loss_typ=dapo"], **{"class": "trl:GRPOTrainer"})
    with pytest.raises(GaverifyError, match=r"^variants: loss_typ=dapo: GRPOConfig of trl [\d.]+ "
                       r"has no argument 'loss_typ' \(did you mean loss_type\?\)$"):  # fmt: skip
        resolve(scenario, [])


def test_a_missing_package_names_the_extra_that_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # import trl now fails
    monkeypatch.setattr(classes, "_missing", lambda package: True)
    with pytest.raises(GaverifyError) as caught:
        resolve(_scenario(**{"class": "trl:SFTTrainer"}), [])
    assert str(caught.value) == (
        "trainer.class: trl:SFTTrainer needs trl, which is not installed: "
        "pip install 'gaverify[trl]' (make install installs it)"
    )


def test_a_bad_trainer_class_is_exit_2_in_under_2_seconds_before_any_model_is_built():
    argv = [sys.executable, "-m", "gaverify", "run", "trainer", "--set",
            "trainer.class=collections:OrderedDict"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: trainer.class: 'collections:OrderedDict' is not a subclass of "
        "transformers.Trainer (type OrderedDict)"
    ]
    assert took < 2.0, f"{took:.2f} s"
    # checked before torch is imported, which is what keeps it fast on any machine
    probe = (
        "import sys\nfrom gaverify.cli import main\n"
        "sys.argv = ['gaverify', 'run', 'trainer', '--set', "
        "'trainer.class=collections:OrderedDict']\n"
        "try:\n    main()\nexcept SystemExit as stop:\n"
        "    print(stop.code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr


def test_grpo_on_several_processes_is_refused_before_anything_is_built():
    scenario = small_scenario(
        backend="trainer",
        trainer={"class": "trl:GRPOTrainer"},
        distributed={"processes": 2},
        batch={"accumulation": [2]},
    )
    with pytest.raises(GaverifyError, match=r"^distributed.processes: GRPOTrainer on 2 "
                       r"processes: each of W processes samples its own completions"):  # fmt: skip
        resolve(scenario, [])
