"""Tooling to run menusync on one machine, not shipped: the klikit sandbox, an embedded Redis,
the `make run` launcher (run.py) and the process harness of the tests and benchmarks (stack.py)."""
