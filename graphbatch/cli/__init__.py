"""The ``graphbatch`` command line: benchmarks."""
