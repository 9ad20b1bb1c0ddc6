import pytest

from gaverify.errors import UnknownNameError
from gaverify.registry import Registry


def test_register_get_and_describe():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1, "the first")

    @reg.register("beta", "the second")
    def beta():
        return 2

    assert reg.get("alpha") == 1
    assert reg.get("beta") is beta
    assert reg.names() == ["alpha", "beta"]
    assert reg.described() == [("alpha", "the first"), ("beta", "the second")]
    assert "alpha" in reg and "gamma" not in reg


def test_a_name_is_taken_once():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("alpha", 2)


def test_a_miss_names_the_kind_suggests_and_lists():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    reg.add("beta", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("alpah")
    assert str(info.value) == "unknown widget 'alpah' (did you mean 'alpha'?); known: alpha, beta"


def test_a_miss_without_close_match_has_no_hint():
    reg: Registry[int] = Registry("widget")
    reg.add("alpha", 1)
    with pytest.raises(UnknownNameError) as info:
        reg.get("zzz")
    assert "did you mean" not in str(info.value)
