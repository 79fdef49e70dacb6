"""The pure core: names, archives, validation, rendering.

Nothing in this package imports Twisted or does network I/O, so every rule
about packages can be unit-tested table by table without a reactor
(``tests/test_core_imports.py`` enforces this).
"""
