"""Partner-API operations: one module per family, each handler taking an ``OpContext``."""
