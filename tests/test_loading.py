from pathlib import Path

import pytest
import yaml

from gaverify.errors import ScenarioError
from gaverify.spec.bundled import bundled, resolve
from gaverify.spec.loading import BUILTIN, apply_overrides, load_scenario, parse_override
from gaverify.spec.schema import Scenario
from gaverify.spec.starter import STARTER


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def _problems(path, overrides=None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    return str(info.value).splitlines()


def test_no_file_is_the_built_in_default():
    assert load_scenario(None) == Scenario()


def test_missing_file(tmp_path):
    assert _problems(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_directory_instead_of_file(tmp_path):
    assert "is a directory" in _problems(tmp_path)[0]


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = _write(tmp_path, "name: x\nbatch: {size: 8\nsteps: 2\n")
    (line,) = _problems(path)
    assert line.startswith(f"{path}: line 3, column 6: invalid YAML")


def test_top_level_must_be_a_mapping(tmp_path):
    assert "got a list" in _problems(_write(tmp_path, "- 1\n- 2\n"))[0]


def test_language_tags_are_refused(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in _problems(path)[0]


def test_empty_file_is_the_default(tmp_path):
    loaded = load_scenario(_write(tmp_path, ""))
    assert loaded.model_dump() == Scenario().model_dump()
    assert loaded.source_dir == tmp_path.resolve()


def test_all_problems_are_reported_at_once_one_line_each(tmp_path):
    path = _write(tmp_path, "modle: {}\nbatch: {size: eight}\nsteps: -1\n")
    lines = _problems(path)
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert f"{path}: modle: unknown key (did you mean 'mode' or 'model'?)" in lines
    assert any(
        "batch.size: input should be a valid integer" in ln and "'eight'" in ln for ln in lines
    )
    assert any(
        ln.startswith(f"{path}: steps: input should be greater than or equal to 1") for ln in lines
    )


def test_batch_not_divisible_by_n(tmp_path):
    (line,) = _problems(_write(tmp_path, "batch: {size: 6, accumulation: [4]}\n"))
    assert line == (
        f"{tmp_path / 's.yaml'}: batch.accumulation: 4 does not divide batch.size 6: "
        "each N must be a divisor of the batch size, from 1 to 6"
    )


def test_scientific_notation_is_a_number_in_files_and_overrides(tmp_path):
    path = _write(tmp_path, "optimizer: {lr: 1e-4, options: {eps: 1e-8}}\n")
    assert load_scenario(path).optimizer.options == {"eps": 1e-8}
    assert parse_override("model.config.rms_norm_eps=1e-5")[1] == 1e-5


def test_parse_override_reads_values_as_yaml():
    assert parse_override("batch.accumulation=[2, 4]") == (["batch", "accumulation"], [2, 4])
    assert parse_override("dtype=float64") == (["dtype"], "float64")
    assert parse_override("model.dropout=true") == (["model", "dropout"], True)


@pytest.mark.parametrize("bad", ["batch.size", "=3", "a..b=1"])
def test_malformed_override(bad):
    with pytest.raises(ScenarioError, match="expected key=value"):
        parse_override(bad)


def test_overrides_apply_on_top_of_the_file(tmp_path):
    path = _write(tmp_path, "steps: 3\nbatch: {size: 8}\n")
    s = load_scenario(path, ["steps=5", "batch.accumulation=[2]", "tolerance.loss_rel=0.1"])
    assert (s.steps, s.batch.size, s.batch.accumulation) == (5, 8, [2])
    assert s.tolerance.loss_rel == 0.1


def test_override_inside_a_default_mapping_keeps_its_other_entries():
    s = load_scenario(None, ["model.config.num_hidden_layers=3"])
    assert s.model.config == {**Scenario().model.config, "num_hidden_layers": 3}
    assert load_scenario(None, ["optimizer.options.eps=1e-6"]).optimizer.options == {"eps": 1e-6}


def test_override_does_not_touch_its_input():
    data = {"batch": {"size": 8}}
    assert apply_overrides(data, ["batch.size=4"]) == {"batch": {"size": 4}}
    assert data == {"batch": {"size": 8}}


def test_override_errors_say_they_came_from_set():
    lines = _problems(None, ["bach.size=4"])
    assert lines == [f"{BUILTIN}: bach: unknown key (did you mean 'batch'?) (from --set)"]


def test_override_cannot_descend_into_a_value(tmp_path):
    with pytest.raises(ScenarioError, match="'steps' is a value, not a section"):
        load_scenario(_write(tmp_path, "steps: 3\n"), ["steps.x=1"])


def test_every_bundled_scenario_validates_and_opens_with_its_command():
    found = bundled()
    assert {b.name for b in found} >= {"quickstart", "equal-lengths"}
    for b in found:
        scenario = load_scenario(b.path)
        assert scenario.name == b.name and b.description
        head = b.path.read_text().splitlines()[:4]
        assert any("gaverify run" in ln for ln in head), b.name
        assert any("--set" in ln for ln in head), b.name


def test_bundled_names_resolve_and_typos_are_helped():
    assert resolve("quickstart").name == "quickstart.yaml"
    with pytest.raises(ScenarioError, match="did you mean 'quickstart'"):
        resolve("quickstrat")


def test_starter_validates_and_documents_every_field():
    scenario = load_scenario(STARTER)
    data = yaml.safe_load(STARTER.read_text())

    def keys(model_cls, node, prefix=""):
        for attribute, field in model_cls.model_fields.items():
            name = field.alias or attribute  # trainer.class (a Python keyword)
            assert name in node, f"starter lacks {prefix}{name}"
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                keys(sub, node[name], f"{prefix}{name}.")

    keys(Scenario, data)
    assert scenario.tolerance.model_dump() == Scenario().tolerance.model_dump()
