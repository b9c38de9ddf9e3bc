"""Hashing methods, one module each. Importing this package imports every module in it, so each method class
registers itself in METHODS (`method=<name>`: configs/method/<name>.yaml); HashNet, the reference, comes first."""
import importlib
import pkgutil

from hashnet.methods.base import METHODS, HashMethod, PairwiseMethod, build_method

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name != "hashnet", m.name)):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "HashMethod", "PairwiseMethod", "build_method"]
