"""The cell kind: NAS-Bench-201's cell (Dong & Yang, ICLR 2020) in its fixed skeleton.

Behind this face: :mod:`.spec` (the cell, its arch string, its canonical form),
:mod:`.network` (the torch modules) and :mod:`.space` (the define-by-run search space).
Importing it registers the kind ``"cell"``.
"""

from __future__ import annotations

from search_spaces.cell.network import CellNet, build_cell
from search_spaces.cell.space import CellSpace
from search_spaces.cell.spec import (
    EDGES,
    NUM_NODES,
    OPS,
    CellArch,
    all_cells,
    cell_canonical_form,
    cell_display_name,
    cell_from_dict,
    cell_to_dict,
    validate_cell,
)
from search_spaces.kinds import ArchKind, register_kind

__all__ = ["EDGES", "NUM_NODES", "OPS", "CellArch", "CellNet", "CellSpace", "all_cells", "validate_cell"]

CELL = register_kind(
    ArchKind(
        name="cell",
        spec_type=CellArch,
        to_dict=cell_to_dict,
        from_dict=cell_from_dict,
        validate=validate_cell,
        build=build_cell,
        canonical_form=cell_canonical_form,
        display_name=cell_display_name,
        legacy_field="cell",
    )
)
