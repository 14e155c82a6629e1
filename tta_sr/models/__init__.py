"""Auto-import every `*_model.py` module here so it registers into BasicSR's registry."""
from tta_sr.utils.registry_scan import import_modules_by_suffix

_modules = import_modules_by_suffix(__name__, __file__, '_model')
