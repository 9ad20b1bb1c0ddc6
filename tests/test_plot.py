"""The PNG plot: a real image with both panels, drawn from the result alone."""

import io

import matplotlib.image as mpimg
import pytest

from gaverify.errors import GaverifyError
from gaverify.report.plot import plot_png
from gaverify.runner import run_scenario
from tests.conftest import small_scenario


def test_the_plot_is_a_png_of_two_panels():
    result = run_scenario(small_scenario(steps=3, batch={"accumulation": [2, 4]}))
    png = plot_png(result)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = mpimg.imread(io.BytesIO(png))
    height, width = image.shape[:2]
    assert (width, height) == (1200, 450)
    # Both halves hold drawn lines, not just an empty frame.
    left, right = image[:, : width // 2], image[:, width // 2 :]
    assert left.std() > 0.05 and right.std() > 0.05


def test_plotting_is_repeatable_byte_for_byte():
    result = run_scenario(small_scenario(steps=1, batch={"accumulation": [2]}))
    assert plot_png(result) == plot_png(result)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    result = run_scenario(small_scenario(steps=1, batch={"accumulation": [2]}))
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(GaverifyError, match=r"pip install 'gaverify\[plot\]'"):
        plot_png(result)
