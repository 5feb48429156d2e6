"""Fixes to ``imagecorruptions.corruptions`` for current numpy and scikit-image, written for imagecorruptions 1.1.2.

Two module globals of ``imagecorruptions.corruptions`` are replaced; nothing global (``numpy``, ``skimage``) is
touched:

* ``np``: ``fog`` builds its plasma fractal with ``np.float_`` (removed in numpy 2); where numpy lacks it, the
  module gets a proxy of numpy that still has it.
* ``gaussian``: ``glass_blur`` and ``gaussian_blur`` call ``skimage.filters.gaussian(..., multichannel=True)``
  (removed in scikit-image 0.19); translated to ``channel_axis=-1``.

:func:`shape_problems` checks that both globals are there, as in 1.1.2, before anything is changed (see
:mod:`art_he.compat.upstream`).
"""

from __future__ import annotations

import types

from art_he.compat.pkg_resources_shim import ensure_pkg_resources
from art_he.compat.upstream import guard


def _numpy_with_float_(numpy) -> types.ModuleType:
    class _Numpy(types.ModuleType):
        float_ = numpy.float64

        def __getattr__(self, name):
            return getattr(numpy, name)

    return _Numpy("numpy")


def _gaussian_accepting_multichannel(sk_gaussian):
    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        if multichannel is not None and "channel_axis" not in kwargs:
            kwargs["channel_axis"] = -1 if multichannel else None
        return sk_gaussian(image, sigma=sigma, **kwargs)

    gaussian.__wrapped__ = sk_gaussian
    return gaussian


def shape_problems(ic, numpy, sk_gaussian) -> list[str]:
    """What of imagecorruptions 1.1.2's globals, as the patch replaces them, is missing from ``ic``."""
    problems = []
    if getattr(ic, "np", None) is not numpy:
        problems.append("imagecorruptions.corruptions.np (numpy)")
    if getattr(ic, "gaussian", None) is not sk_gaussian:
        problems.append("imagecorruptions.corruptions.gaussian (skimage.filters.gaussian)")
    return problems


def patch_corruptions_module(ic, numpy, sk_gaussian) -> None:
    """Replace ``np`` (where numpy lacks ``float_``) and ``gaussian`` in ``ic``, after the guard (once)."""
    if getattr(ic, "_art_he_patched", False):
        return
    guard("imagecorruptions", shape_problems(ic, numpy, sk_gaussian))
    if not hasattr(numpy, "float_"):
        ic.np = _numpy_with_float_(numpy)
    ic.gaussian = _gaussian_accepting_multichannel(sk_gaussian)
    ic._art_he_patched = True


def ensure_imagecorruptions():
    """Import ``imagecorruptions`` with the two fixes above (idempotent); return the module."""
    ensure_pkg_resources()
    import imagecorruptions
    import imagecorruptions.corruptions as ic
    import numpy
    from skimage.filters import gaussian as sk_gaussian

    patch_corruptions_module(ic, numpy, sk_gaussian)
    return imagecorruptions
