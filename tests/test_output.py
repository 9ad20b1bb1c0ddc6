import pytest

from gaverify.errors import GaverifyError
from gaverify.output import write_atomic


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "result.json"
    write_atomic(target, "one")
    write_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_unwritable_target_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(GaverifyError, match="cannot write"):
        write_atomic(tmp_path / "file" / "result.json", "{}")
