"""Neuron segmentation backends behind one dispatching function.

``segment_neurons(image, pixel_size_um=..., backend="classical")`` returns an int32
label image (0 background, ids 1..n). The classical scikit-image backend works
offline; further backends (e.g. ``"cellpose"``, imported lazily from its own module)
are added with :func:`register_backend`.
"""

from ._classical import segment_classical
from ._registry import available_backends, register_backend, segment_neurons

__all__ = ["segment_neurons", "segment_classical", "register_backend", "available_backends"]
