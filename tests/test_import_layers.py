"""Tests for scripts/import_layers.py: tta_sr imports only downward, and the check does catch an upward import."""
import importlib.util
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'import_layers.py')
_spec = importlib.util.spec_from_file_location('import_layers', SCRIPT)
layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layers)


def test_the_package_imports_only_downward():
    graph = layers.read_imports(os.path.join(REPO, 'tta_sr'), 'tta_sr')
    assert 'tta_sr.archs.far_encoder_arch' in graph
    assert layers.layer_problems(graph, layers.FLOORS) == []


def test_an_upward_import_inside_a_function_is_found(tmp_path):
    pkg = tmp_path / 'fake'
    for folder in ('low', 'high'):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / '__init__.py').write_text('')
    (pkg / '__init__.py').write_text('from fake import high, low\n')
    (pkg / 'high' / 'b.py').write_text('from fake.low import a\n')
    (pkg / 'low' / 'a.py').write_text('def f():\n    from fake.high.b import g\n    return g\n')
    (pkg / 'low' / 'c.py').write_text('from . import a\n')
    graph = layers.read_imports(str(pkg), 'fake')
    assert graph['fake.low.c'] == ['fake.low.a']
    problems = layers.layer_problems(graph, [('low',), ('high',), ('__init__',)])
    assert problems == ['upward import: fake.low.a (floor 0) imports fake.high.b (floor 1)']


def test_a_module_on_no_floor_is_named(tmp_path):
    (tmp_path / 'fake' / 'extra').mkdir(parents=True)
    (tmp_path / 'fake' / '__init__.py').write_text('')
    (tmp_path / 'fake' / 'extra' / '__init__.py').write_text('')
    problems = layers.layer_problems(layers.read_imports(str(tmp_path / 'fake'), 'fake'), [('__init__',)])
    assert problems == ["on no floor: fake.extra (add 'extra' to FLOORS)"]


def test_the_command_prints_the_floors_and_exits_0():
    res = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('floor 0: compat, utils, ops, options\n')
    assert '  tta_sr.archs.far_encoder_arch -> archs.lpips_arch' in res.stdout


def test_docs_layers_shows_the_current_graph():
    """docs/layers.md's listing is what the command prints now (`python scripts/import_layers.py --write-doc`)."""
    graph = layers.read_imports(os.path.join(REPO, 'tta_sr'), 'tta_sr')
    with open(layers.DOC) as f:
        text = f.read()
    assert layers.with_output(text, layers.render(graph, 'tta_sr', layers.FLOORS)) == text
