from typing import get_args

from gaverify.api.catalog import MODES, catalog
from gaverify.spec.schema import Mode


def test_listed_modes_are_exactly_the_schema_modes():
    assert [name for name, _ in MODES] == list(get_args(Mode))


def test_every_listed_entry_has_a_description():
    for section, entries in catalog().items():
        assert entries, section
        assert all(summary for _, summary in entries), section


def test_only_the_trainer_lists_key_value_settings():
    found = {
        section.split()[3]: [name for name, _ in entries]
        for section, entries in catalog().items()
        if section.startswith("variants of backend")
    }
    assert "key=value" in found["trainer"]
    assert all("key=value" not in names for backend, names in found.items() if backend != "trainer")
