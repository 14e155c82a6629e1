"""Import every ``*<suffix>.py`` module of a package folder so their decorators fill BasicSR's registries."""
import importlib
import os


def import_modules_by_suffix(package_name, package_file, suffix):
    """Import ``package_name.<stem>`` for each file ``<stem><suffix>.py`` next to ``package_file``; return them."""
    folder = os.path.dirname(os.path.abspath(package_file))
    stems = sorted(f[:-3] for f in os.listdir(folder) if f.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package_name}.{stem}') for stem in stems]
