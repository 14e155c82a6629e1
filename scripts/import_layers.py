"""Print tta_sr's import graph floor by floor; exit 1 naming every import that runs up to a higher floor.

    python scripts/import_layers.py               # --write-doc also puts the output into docs/layers.md

A floor is a set of the package's subpackages (or top-level modules); ``FLOORS`` lists them lowest first. A
module may import from its own floor and from the floors below it, never from a floor above; imports inside
functions count as well. The imports are read with ``ast`` from ``tta_sr/**/*.py``; nothing is imported.
"""
import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'tta_sr'
# Lowest first. ``__init__`` is the package's own ``tta_sr/__init__.py`` (it imports archs ... models).
FLOORS = [
    ('compat', 'utils', 'ops', 'options'),
    ('weights',),
    ('archs',),
    ('losses',),
    ('data',),
    ('metrics',),
    ('report',),
    ('models',),
    ('commands',),
    ('__init__', 'cli', 'train', 'test'),
]


def module_files(package_dir, package):
    """{module name: file path} of every ``.py`` file below ``package_dir``."""
    modules = {}
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        rel = os.path.relpath(folder, package_dir)
        prefix = package if rel == '.' else package + '.' + rel.replace(os.sep, '.')
        for name in sorted(files):
            if name.endswith('.py'):
                modules[prefix if name == '__init__.py' else f'{prefix}.{name[:-3]}'] = os.path.join(folder, name)
    return modules


def imported_modules(node, module, is_package, modules):
    """The modules an ``Import`` / ``ImportFrom`` node of ``module`` reads, relative imports made absolute.

    ``from a.b import c`` reads the module ``a.b.c`` when there is one, else ``a.b`` itself.
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ''
    if node.level:
        parts = module.split('.')
        base = '.'.join(parts[:len(parts) - node.level + is_package] + ([base] if base else []))
    return [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base for alias in node.names]


def read_imports(package_dir, package):
    """{module: sorted package modules it imports, at module level or inside functions}."""
    modules = module_files(package_dir, package)
    graph = {}
    for module, path in modules.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = imported_modules(node, module, path.endswith('__init__.py'), modules)
                targets.update(n for n in names if n == package or n.startswith(package + '.'))
        targets.discard(module)
        graph[module] = sorted(targets)
    return graph


def group_of(module):
    """``tta_sr.models.x`` -> ``models``; ``tta_sr.cli`` -> ``cli``; ``tta_sr`` -> ``__init__``."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def floor_of(module, floors):
    """Index in ``floors`` of the floor that holds ``module``, or None when no floor names its group."""
    group = group_of(module)
    return next((i for i, floor in enumerate(floors) if group in floor), None)


def layer_problems(graph, floors):
    """One line per module on no floor and per import from a lower floor to a higher one."""
    problems = [f'on no floor: {m} (add {group_of(m)!r} to FLOORS)' for m in graph if floor_of(m, floors) is None]
    for module, targets in graph.items():
        low = floor_of(module, floors)
        for target in targets:
            high = floor_of(target, floors)
            if low is not None and high is not None and high > low:
                problems.append(f'upward import: {module} (floor {low}) imports {target} (floor {high})')
    return problems


def render(graph, package, floors):
    """The floors, lowest first, each module with the package modules it imports."""
    lines = []
    for i, floor in enumerate(floors):
        lines.append(f'floor {i}: {", ".join(floor)}')
        for module in sorted(m for m in graph if floor_of(m, floors) == i):
            short = [t[len(package) + 1:] or package for t in graph[module]]
            lines.append(f'  {module}' + (f' -> {", ".join(short)}' if short else ''))
    return '\n'.join(lines)


DOC = os.path.join(REPO, 'docs', 'layers.md')


def with_output(doc_text, output):
    """``docs/layers.md``'s text with the fenced block after 'Its output today' replaced by ``output``."""
    start = doc_text.index('```\n', doc_text.index('Its output today')) + 4
    return doc_text[:start] + output + '\n' + doc_text[doc_text.index('```', start):]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    graph = read_imports(os.path.join(REPO, PACKAGE), PACKAGE)
    output = render(graph, PACKAGE, FLOORS)
    print(output)
    if '--write-doc' in argv:
        with open(DOC) as f:
            text = with_output(f.read(), output)
        with open(DOC, 'w') as f:
            f.write(text)
    problems = layer_problems(graph, FLOORS)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
