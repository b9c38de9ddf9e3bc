"""Hashing methods, one module each; METHODS maps a `method=` name to its class."""
from hashnet.methods.base import HashMethod
from hashnet.methods.hashnet import HashNet

METHODS: dict[str, type[HashMethod]] = {method.name: method for method in (HashNet,)}
