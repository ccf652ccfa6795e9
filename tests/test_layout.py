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
    assert "nas.search.device_search" not in COMMANDS and "latency_models.profiles.registry" not in COMMANDS


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_no_command_module_or_private_name_is_imported(name):
    tree = ast.parse(CHECKED[name].read_text())
    for module, names, node in imported(tree, name):
        targets = [module] + [f"{module}.{n}" for n in names]
        assert not COMMANDS.intersection(targets), f"{name}:{node.lineno} imports a command module: {module}"
        if module.split(".")[0] in PACKAGES:
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{name}:{node.lineno} imports private names {private} from {module}"


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
