"""The address families a script runs in, as the CLI and the pytest plugin name them."""

FAMILIES = {"4": (4,), "6": (6,), "both": (4, 6)}
