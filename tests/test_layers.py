"""The layer rules (README, *Layout*), checked over byoklib's import graph (every import
statement, at module level or inside a function, every import by name and every name taken
from a package's front door), so the house cannot drift."""
import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

import byoklib

ROOT = Path(byoklib.__file__).parent
HTTP_LIBRARIES = {"requests", "urllib3", "werkzeug", "cheroot", "http.server", "socketserver",
                  "socket"}
CRYPTO_LIBRARIES = {"cryptography", "hashlib", "hmac", "Crypto", "byoklib.primitives"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imported_name(base: str, name: str) -> str:
    """The module `from base import name` reaches: a submodule, or for a name a byoklib
    package hands out (`from byoklib import running_server`, `from byoklib.mock import
    running_server`, re-exported lazily) the module that defines it."""
    candidate = f"{base}.{name}"
    if base == "byoklib" and name in byoklib._WHERE:
        return f"byoklib.{byoklib._WHERE[name]}"
    package = ROOT.parent.joinpath(*base.split("."))
    # a name from a module is that module's; only a package's front door may hand out
    # another's (its __init__ is light to import, a module such as timing is not)
    if not within(base, "byoklib") or not package.is_dir() \
            or importlib.util.find_spec(candidate) is not None:
        return candidate
    defined_in = getattr(getattr(importlib.import_module(base), name, None), "__module__", "")
    return defined_in if within(defined_in, "byoklib") else candidate


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every module `path` imports: import statements at module level or inside a function,
    relative ones resolved, names taken from the package's front door traced to their
    module, and `importlib.import_module` / `__import__` of a constant name."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(imported_name(base, alias.name) for alias in node.names)
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            called = node.func
            if (isinstance(called, ast.Attribute) and called.attr == "import_module") or \
                    (isinstance(called, ast.Name) and called.id in ("import_module",
                                                                  "__import__")):
                found.add(node.args[0].value)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "byoklib" and node.attr in byoklib._WHERE:
            found.add(f"byoklib.{byoklib._WHERE[node.attr]}")   # byoklib.running_server
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(ROOT.rglob("*.py"))}


def offending(module: str, *forbidden: str) -> list[str]:
    return sorted(i for i in MODULES[module] if within(i, *forbidden))


def modules_in(*prefixes: str, but: tuple[str, ...] = ()) -> list[str]:
    return [m for m in MODULES if within(m, *prefixes) and not within(m, *but)]


def test_the_graph_covers_the_wings():
    for wing in ("byoklib.client", "byoklib.mock.service", "byoklib.mock.http",
                 "byoklib.tutorial"):
        assert modules_in(wing), wing
    assert "byoklib.mock.hsm" in MODULES


# The foundation, each module with the only parts of byoklib it may import (lower ones):
# protocol at the bottom, so every other place reads the wire facts from it.
FOUNDATION = {"byoklib.protocol": (), "byoklib.errors": ("byoklib.protocol",),
              "byoklib.primitives": ("byoklib.protocol",),
              "byoklib.rules": ("byoklib.protocol", "byoklib.errors")}


def test_the_foundation_is_what_lies_flat_at_the_top():
    flat = {m for m in MODULES if m.count(".") == 1 and not (ROOT / m.split(".")[1]).is_dir()}
    assert flat - set(FOUNDATION) == {"byoklib.__main__", "byoklib.pytest_plugin"}


@pytest.mark.parametrize("module", sorted(FOUNDATION))
def test_the_foundation_imports_only_what_lies_below_it(module):
    allowed = FOUNDATION[module]
    # `from byoklib import protocol` names the package too; what it imports is checked
    assert [i for i in offending(module, "byoklib")
            if i != "byoklib" and not within(i, *allowed)] == []
    assert offending(module, *HTTP_LIBRARIES, "threading", "time") == []


@pytest.mark.parametrize("module", modules_in("byoklib.client"))
def test_the_client_never_knows_the_mock(module):
    assert offending(module, "byoklib.mock", "byoklib.tutorial", "werkzeug", "cheroot") == []


@pytest.mark.parametrize("module", modules_in("byoklib.mock", but=("byoklib.mock.http",)))
def test_the_model_speaks_no_http(module):
    found = offending(module, "byoklib.mock.http", "byoklib.client", "byoklib.tutorial",
                      *HTTP_LIBRARIES)
    if module == "byoklib.mock":   # the wing's front door hands out running_server lazily
        assert found == ["byoklib.mock.http.serving"]
    else:
        assert found == []


@pytest.mark.parametrize("module", modules_in("byoklib.mock.http"))
def test_the_http_face_has_no_crypto_and_no_client(module):
    assert offending(module, "byoklib.client", "byoklib.tutorial", *CRYPTO_LIBRARIES) == []


@pytest.mark.parametrize("module", [m for m in MODULES
                                    if not within(m, "byoklib.tutorial", "byoklib.__main__")
                                    and m != "byoklib"])
def test_nothing_below_imports_the_top(module):
    assert offending(module, "byoklib.tutorial", "byoklib.__main__") == []


def test_a_forbidden_import_is_seen(tmp_path):
    """The checker itself: imports inside a function, relative ones, names from the
    package's front door and imports by name are found."""
    probe = tmp_path / "byoklib" / "client" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import importlib\n"
                     "def f():\n    from byoklib.mock import hsm\n"
                     "    from ..mock.service import x\n    import werkzeug.routing\n"
                     "    from byoklib import running_server, KeyProtectService, protocol\n"
                     "    importlib.import_module('byoklib.mock.keypairs')\n"
                     "    __import__('cheroot.wsgi')\n"
                     "    from .. import mock\n    from ..mock import running_server\n"
                     "    import byoklib\n    byoklib.measure\n")
    found = imports_of(probe, tmp_path / "byoklib")
    assert {"byoklib.mock.hsm", "byoklib.mock.service.x", "werkzeug.routing",
            "byoklib.mock.http.serving", "byoklib.mock.service", "byoklib.protocol",
            "byoklib.mock.keypairs", "cheroot.wsgi", "byoklib.mock",
            "byoklib.tutorial.timing"} <= found
