"""The import contracts `make check` runs can fail: a cycle or a missing dependency breaks them."""

from grimp import ImportGraph

from tools.import_contracts import AcyclicModulesContract, ImportsContract


def graph(*imports: tuple[str, str]) -> ImportGraph:
    """A graph of these imports, with every package above the modules (as Python has them)."""
    built = ImportGraph()
    for importer, imported in imports:
        for module in (importer, imported):
            parts = module.split(".")
            for depth in range(1, len(parts)):
                built.add_module(".".join(parts[:depth]))
        built.add_import(importer=importer, imported=imported)
    return built


def acyclic(imports: ImportGraph) -> tuple[bool, list[tuple[str, ...]]]:
    check = AcyclicModulesContract("no cycles", {}, {}).check(imports, verbose=False)
    return check.kept, check.metadata["cycles"]


def test_a_cycle_through_three_modules_is_found_once() -> None:
    kept, cycles = acyclic(graph(("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")))

    assert not kept
    assert cycles == [("p.a", "p.b", "p.c", "p.a")]


def test_a_package_level_loop_without_a_module_cycle_is_kept() -> None:
    """settings -> db.urls and db.engine -> settings: the packages loop, no module does."""
    kept, cycles = acyclic(graph(("p.settings", "p.db.urls"), ("p.db.engine", "p.settings")))

    assert kept, cycles


def test_a_package_that_does_not_import_the_description_breaks_the_contract() -> None:
    imports = graph(("p.planner.compiler", "p.entities"), ("p.types", "p.derive"))
    contract = ImportsContract(
        "both read it", {}, {"importers": ["p.planner", "p.types"], "imported": "p.entities"}
    )

    check = contract.check(imports, verbose=False)

    assert not check.kept
    assert check.metadata["missing"] == ["p.types"]
