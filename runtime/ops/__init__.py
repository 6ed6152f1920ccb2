"""Operator modules. Every `Operator` object defined at the top level of a module in this package
is part of the registry (see expc.runtime.registry.load_registry); no import side effects."""
