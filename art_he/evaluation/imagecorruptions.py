"""imagecorruptions' corruption functions (written for imagecorruptions 1.1.2), fixed for current numpy and
scikit-image in a copy of our own: nothing of the installed package changes.

``imagecorruptions/corruptions.py`` is executed once as a private module (never put in ``sys.modules``, so
``import imagecorruptions`` gives the user the package as it is), with two of its globals replaced:

* ``np``: ``fog`` builds its plasma fractal with ``np.float_`` (removed in numpy 2); where numpy lacks it, the copy
  gets a proxy of numpy that still has it (numpy itself, its global random generator included, does the work).
* ``gaussian``: ``glass_blur`` and ``gaussian_blur`` call ``skimage.filters.gaussian(..., multichannel=True)``
  (removed in scikit-image 0.19); translated to ``channel_axis=-1``.

Its ``from pkg_resources import resource_filename`` gets :func:`art_he.upstream.resource_filename` (setuptools >= 82
has no ``pkg_resources``). Before anything is replaced, :func:`shape_problems` checks that both globals are there,
as in 1.1.2 (see :mod:`art_he.upstream`).
"""

from __future__ import annotations

import builtins
import functools
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from art_he.upstream import guard, package_folder, resource_filename

MODULE = "imagecorruptions.corruptions"


def _numpy_with_float_(numpy: types.ModuleType) -> types.ModuleType:
    class _Numpy(types.ModuleType):
        float_ = numpy.float64

        def __getattr__(self, name: str) -> Any:
            return getattr(numpy, name)

    return _Numpy("numpy")


def _gaussian_accepting_multichannel(sk_gaussian: Callable[..., Any]) -> Callable[..., Any]:
    def gaussian(image: Any, sigma: Any = 1, multichannel: bool | None = None, **kwargs: Any) -> Any:
        if multichannel is not None and "channel_axis" not in kwargs:
            kwargs["channel_axis"] = -1 if multichannel else None
        return sk_gaussian(image, sigma=sigma, **kwargs)

    gaussian.__wrapped__ = sk_gaussian  # type: ignore[attr-defined]
    return gaussian


def shape_problems(namespace: Mapping[str, object], numpy: types.ModuleType, sk_gaussian: object) -> list[str]:
    """What of imagecorruptions 1.1.2's globals, as the fix replaces them, is missing from ``namespace``."""
    problems = []
    if namespace.get("np") is not numpy:
        problems.append(f"{MODULE}.np (numpy)")
    if namespace.get("gaussian") is not sk_gaussian:
        problems.append(f"{MODULE}.gaussian (skimage.filters.gaussian)")
    return problems


def _importer(stand_ins: Mapping[str, types.ModuleType]) -> Callable[..., types.ModuleType]:
    """``__import__`` that gives ``stand_ins`` for their names and the real modules otherwise."""

    def import_(name: str, globals: Any = None, locals: Any = None, fromlist: Sequence[str] = (),
                level: int = 0) -> types.ModuleType:
        if level == 0 and name in stand_ins:
            return stand_ins[name]
        return builtins.__import__(name, globals, locals, fromlist, level)

    return import_


@functools.cache
def corruption_functions() -> dict[str, Callable[[Any, int], Any]]:
    """``{name: function(PIL image, severity)}`` of our fixed copy of ``imagecorruptions.corruptions``."""
    from skimage.filters import gaussian as sk_gaussian

    path = package_folder("imagecorruptions") / "corruptions.py"
    pkg_resources = types.ModuleType("pkg_resources")
    pkg_resources.resource_filename = resource_filename  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__name__": MODULE, "__file__": str(path),
                                 "__builtins__": {**vars(builtins), "__import__": _importer(
                                     {"pkg_resources": pkg_resources})}}
    with warnings.catch_warnings():  # its `scipy.ndimage.interpolation` import is deprecated (upstream's noise)
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    guard("imagecorruptions", shape_problems(namespace, np, sk_gaussian))
    if not hasattr(np, "float_"):
        namespace["np"] = _numpy_with_float_(np)
    namespace["gaussian"] = _gaussian_accepting_multichannel(sk_gaussian)
    return {name: value for name, value in namespace.items()
            if isinstance(value, types.FunctionType) and value.__module__ == MODULE}


def corrupt(image: np.ndarray, corruption: str, severity: int) -> np.ndarray:
    """imagecorruptions' ``corrupt(image, severity, corruption_name)`` on an (H, W) or (H, W, 1|3) uint8 image of at
    least 32x32 pixels: (H, W, 3) uint8 (grey images are corrupted as RGB)."""
    from PIL import Image

    if image.ndim == 2:
        image = np.stack((image,) * 3, axis=-1)
    if image.shape[-1] == 1:
        image = np.stack((np.squeeze(image),) * 3, axis=-1)
    corrupted: np.ndarray = np.uint8(corruption_functions()[corruption](Image.fromarray(image), severity))
    return corrupted
