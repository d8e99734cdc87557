"""Qt widgets of the companion (DESIGN.md §2): main window, worklist, finding cards, async glue."""
