"""Benchmarks: ``make bench`` (``python -m bench``) runs every module of this package with a ``main()``."""
