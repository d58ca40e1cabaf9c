"""The layout holds: config/ is a leaf, what ships never imports the tooling, and every Lua script
is a file of workers/lua/ loaded through workers/scripts.py.

Every module is read as an AST, so imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("cli", "config", "klikit", "producers", "workers")
PROJECT = (*SHIPPED, "devstack", "bench", "tests")
TOOLING = ("devstack", "bench", "tests")
SCRIPTS_MODULE = ROOT / "workers" / "scripts.py"
LUA_DIR = ROOT / "workers" / "lua"


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every import, at any depth, and of ``import_module("...")`` calls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]
        elif (
            isinstance(node, ast.Call)
            and _call_name(node) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value.split(".")[0]


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_packages_exist() -> None:
    for package in (*SHIPPED, "devstack", "bench"):
        assert (ROOT / package / "__init__.py").is_file(), package
    assert _modules("config") and _modules("devstack")


def test_config_imports_no_project_package() -> None:
    found = [
        f"{_rel(path)}:{line} imports {name}"
        for path in _modules("config")
        for line, name in _imported(_tree(path))
        if name in PROJECT and name != "config"
    ]
    assert not found, found


def test_shipped_code_never_imports_the_tooling() -> None:
    found = [
        f"{_rel(path)}:{line} imports {name}"
        for path in _modules(*SHIPPED)
        for line, name in _imported(_tree(path))
        if name in TOOLING
    ]
    assert not found, found


def test_the_guard_sees_imports_inside_functions() -> None:
    tree = ast.parse("def f():\n    from devstack.stack import wait_for\n    import bench.common\n")
    assert {name for _, name in _imported(tree)} == {"devstack", "bench"}


def _script_calls(tree: ast.Module) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in ("script", "run_scripts"):
            yield node


@pytest.mark.parametrize("path", _modules(*SHIPPED), ids=_rel)
def test_lua_only_through_workers_scripts(path: Path) -> None:
    if path == SCRIPTS_MODULE:
        return
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            assert name not in ("register_script", "eval", "evalsha", "eval_ro", "evalsha_ro"), (
                f"{_rel(path)}:{node.lineno}: {name}() outside workers/scripts.py"
            )
            if name == "execute_command" and node.args and isinstance(node.args[0], ast.Constant):
                command = str(node.args[0].value).upper()
                assert not command.startswith(("EVAL", "SCRIPT", "FCALL", "FUNCTION")), (
                    f"{_rel(path)}:{node.lineno}: {command} outside workers/scripts.py"
                )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert "redis.call(" not in node.value and "redis.pcall(" not in node.value, (
                f"{_rel(path)}:{node.lineno}: Lua source in a string literal; put it in workers/lua/"
            )


def test_every_script_named_is_a_file_and_every_file_is_used() -> None:
    named: dict[str, str] = {}
    for path in _modules(*SHIPPED):
        for call in _script_calls(_tree(path)):
            if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str):
                named.setdefault(call.args[1].value, f"{_rel(path)}:{call.lineno}")
    files = {p.stem for p in LUA_DIR.glob("*.lua")}
    missing = {name: where for name, where in named.items() if name not in files}
    assert not missing, f"script() names without a workers/lua/<name>.lua: {missing}"
    assert named, "no script() call found: the guard is looking in the wrong place"
    unused = files - set(named)
    assert not unused, f"workers/lua/ files no script() call names: {sorted(unused)}"


def test_tests_take_the_process_harness_from_devstack() -> None:
    """Tests import devstack for the harness (the webhook stream of the chaos runs included); of bench
    only the short lunch-rush run, which tests that benchmark itself."""
    found = []
    for path in _modules("tests"):
        for node in ast.walk(_tree(path)):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            found += [
                f"{_rel(path)}:{node.lineno} imports {m}"
                for m in modules
                if m.split(".")[0] == "bench"
                and not (m == "bench.lunch_rush" and path.name == "test_lunch_rush_short.py")
            ]
    assert not found, found


def test_the_command_line_is_one_typer_app_in_cli() -> None:
    found = [
        f"{_rel(path)}:{line} imports typer"
        for path in _modules("config", "klikit", "producers", "workers")
        for line, name in _imported(_tree(path))
        if name == "typer"
    ]
    assert not found, found


def _wire_names() -> set[str]:
    """Every camelCase key of a klikit request body, from the request models' aliases."""
    import klikit.models as models

    names: set[str] = set()
    for value in vars(models).values():
        if isinstance(value, type) and issubclass(value, models.WireModel):
            names |= {f.alias for f in value.model_fields.values() if f.alias and f.alias != f.alias.lower()}
    return names


def test_request_bodies_are_built_only_in_klikit() -> None:
    wire = _wire_names()
    assert {"providerIDs", "isEnabled", "brandID"} <= wire, "the guard is not reading the request models"
    found = [
        f"{_rel(path)}:{node.lineno} builds a body with {key.value!r}"
        for path in _modules("workers", "producers", "cli")
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and key.value in wire
    ]
    assert not found, found
