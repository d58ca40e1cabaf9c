"""The ``menusync`` command line (:mod:`cli.app`)."""
