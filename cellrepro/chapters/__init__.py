"""What only one paper's notebooks use: its split, grids, protocol and figure helpers."""
