"""Adapters that register model-zoo SR families into BasicSR's ARCH_REGISTRY (auto-imported `*_arch.py`)."""
from tta_sr.utils.registry_scan import import_modules_by_suffix

_modules = import_modules_by_suffix(__name__, __file__, '_arch')
