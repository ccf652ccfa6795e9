"""The code's layout holds: command modules are imported by no library, nobody imports another
module's private names, imports sit at module level (except a heavy optional dependency), and a
flag several commands share has one default."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "search_spaces", "latency_models", "nas")
DEFERRABLE = {"tensorflow", "jax.experimental.jax2tf", "matplotlib", "matplotlib.pyplot"}  # heavy and optional


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def is_command(name: str, path: Path) -> bool:
    return name.endswith(".__main__") or 'if __name__ == "__main__":' in path.read_text()


def imported(tree: ast.AST, name: str):
    """(module, imported names, node) of every import in a parsed module."""
    package = name if name.endswith("__init__") else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            yield base, [a.name for a in node.names], node


MODULES = modules()
COMMANDS = {name for name, path in MODULES.items() if is_command(name, path)}
# The benchmarks are scripts, not packages, but they call the libraries the same way.
CHECKED = {**MODULES, **{f"benchmarks.{p.stem}": p for p in sorted((REPO / "benchmarks").glob("*.py"))}}


def test_the_commands_are_found():
    assert {"nas.search.__main__", "nas.export.__main__", "nas.train", "latency_models.devices"} <= COMMANDS
    assert "nas.search.preparation" not in COMMANDS and "latency_models.profiles.registry" not in COMMANDS


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_no_command_module_or_private_name_is_imported(name):
    tree = ast.parse(CHECKED[name].read_text())
    for module, names, node in imported(tree, name):
        targets = [module] + [f"{module}.{n}" for n in names]
        assert not COMMANDS.intersection(targets), f"{name}:{node.lineno} imports a command module: {module}"
        if module.split(".")[0] in PACKAGES:
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{name}:{node.lineno} imports private names {private} from {module}"


# The package order (README, code map): each layer imports only those below it. Within nas, the
# supernet at the bottom, training above it, the estimators, export and search above training
# (search also scores with the estimators), the command modules on top; nas.options holds the
# flags and defaults the nas commands share and imports only common.
LAYERS = {
    "common": 0,
    "search_spaces": 1,
    "latency_models": 2,
    "nas.options": 3,
    "nas.supernet": 3,
    "nas.training": 4,
    "nas.accuracy": 5,
    "nas.export": 5,
    "nas.search": 6,
    "nas": 7,  # the nas package's own modules outside its subpackages (today: the commands)
}
# The one cycle: an ArchSpec converts itself to a graph, whose nodes name ArchSpec's layer types.
MUTUAL = {frozenset({"search_spaces.arch_spec", "search_spaces.graph"})}


def layer(module: str) -> tuple[str, int]:
    """(layer name, height) of one of the packages' modules; a command module is above them all."""
    if module in COMMANDS:
        return "a command", 99
    parts = module.split(".")
    for name in (".".join(parts[:2]), parts[0]):
        if name in LAYERS:
            return name, LAYERS[name]
    raise AssertionError(f"{module}: in no layer of the package order; add its package to LAYERS")


def upward_imports(name: str, tree: ast.AST) -> list[str]:
    """The imports of module `name` that reach a layer above its own."""
    own, height = layer(name)
    found = []
    for module, names, node in imported(tree, name):
        for target in [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES] or [module]:
            if target not in MODULES or frozenset({name, target}) in MUTUAL:
                continue
            other, other_height = layer(target)
            if other_height > height:
                found.append(f"{name}:{node.lineno} ({own}) imports {target} ({other}), a layer above it")
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(name):
    assert upward_imports(name, ast.parse(MODULES[name].read_text())) == []


def test_an_upward_import_is_found():
    """The check above can fail: a training module importing an estimator is named."""
    tree = ast.parse("from nas.accuracy.estimator import AccuracyPredictor\n")
    assert upward_imports("nas.training.run", tree) == [
        "nas.training.run:1 (nas.training) imports nas.accuracy.estimator (nas.accuracy), a layer above it"
    ]


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_imports_are_at_module_level(name):
    tree = ast.parse(CHECKED[name].read_text())
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    modules = [
                        a.name if isinstance(node, ast.Import) else f"{node.module}.{a.name}" for a in node.names
                    ]
                    assert set(modules) <= DEFERRABLE, (
                        f"{name}:{node.lineno} imports {modules} inside {function.name}()"
                    )


# Flags whose meaning differs from command to command, so their defaults may too.
PER_COMMAND = {"out", "json", "target", "arch", "zoo", "resolution", "steps", "step", "seed", "supernet", "help"}
PARSERS = {
    "nas.train": "build_parser",
    "nas.evaluate": "build_parser",
    "nas.fit_accuracy": "build_parser",
    "nas.search.__main__": "build_parser",
    "nas.export.__main__": "build_parser",
    "latency_models.calibrate": "build_parser",
    "latency_models.measure": "build_parser",
    "latency_models.evaluate": "build_parser",
}


def test_a_flag_shared_by_several_commands_has_one_default():
    defaults: dict[str, dict[str, object]] = {}
    for module, function in PARSERS.items():
        parser = getattr(importlib.import_module(module), function)()
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and action.dest not in PER_COMMAND:
                    defaults.setdefault(flag, {})[module] = action.default
    shared = {flag: by for flag, by in defaults.items() if len(by) > 1}
    assert {"--cpu-devices", "--calib-images", "--precision"} <= set(shared)
    for flag, by in shared.items():
        assert len({repr(v) for v in by.values()}) == 1, f"{flag} has several defaults: {by}"
