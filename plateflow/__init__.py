"""plateflow: the shell (settings, CLI, embedded Redis).

Kept import-light on purpose: the leaf packages import :mod:`plateflow.errors`, and importing
this package must not pull in the CLI or any service client.
"""

__version__ = "0.1.0"
