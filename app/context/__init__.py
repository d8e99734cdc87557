"""How the companion is told which study to show: launch arguments and URLs."""
