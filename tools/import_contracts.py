"""Import-linter contracts its built-in types do not cover.

`lint-imports` (configured in pyproject.toml, run by `make check`) loads these by name.
"""

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

Chain = tuple[str, ...]


class AcyclicModulesContract(Contract):
    """No module imports itself through others, however indirectly.

    A cycle is what forces function-level imports and `object`-typed fields to dodge a
    partially initialised module. Imports inside functions count: they are cycles deferred.
    Unlike `acyclic_siblings`, packages are not squashed: `api.db.engine` may read
    `api.settings` while `api.settings` parses URLs with `api.db.urls`.
    """

    type_name = "acyclic_modules"

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles: dict[frozenset[str], Chain] = {}
        for module in sorted(graph.modules):
            for imported in sorted(graph.find_modules_directly_imported_by(module)):
                back = graph.find_shortest_chain(importer=imported, imported=module)
                if back is not None:
                    cycle = (module, *back)
                    cycles.setdefault(frozenset(cycle), cycle)
        return ContractCheck(kept=not cycles, metadata={"cycles": sorted(cycles.values())})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(" -> ".join(cycle), bold=False)
            output.new_line()


class ImportsContract(Contract):
    """Each of `importers` (as a package) imports `imported` directly: a dependency on
    purpose, such as both answering paths reading the one description of the catalogue."""

    type_name = "imports"

    importers: Any = fields.ListField(subfield=fields.ModuleField())
    imported: Any = fields.ModuleField()

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        missing = [
            importer.name
            for importer in self.importers
            if not graph.direct_import_exists(
                importer=importer.name, imported=self.imported.name, as_packages=True
            )
        ]
        return ContractCheck(kept=not missing, metadata={"missing": missing})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer in check.metadata["missing"]:
            output.print_error(f"{importer} does not import {self.imported.name}", bold=False)
            output.new_line()
