"""Hashing methods, one module each; METHODS maps a `method=` name to its class."""
from hashnet.methods.base import HashMethod
from hashnet.methods.classifier import Classifier
from hashnet.methods.csq import CSQ
from hashnet.methods.dch import DCH
from hashnet.methods.dhn import DHN
from hashnet.methods.dpn import DPN
from hashnet.methods.dpsh import DPSH
from hashnet.methods.dsh import DSH
from hashnet.methods.dtsh import DTSH
from hashnet.methods.greedyhash import GreedyHash
from hashnet.methods.hashnet import HashNet
from hashnet.methods.idhn import IDHN
from hashnet.methods.orthohash import OrthoHash

METHODS: dict[str, type[HashMethod]] = {method.name: method for method in (
    HashNet, DHN, DPSH, DSH, GreedyHash, CSQ, DCH, DTSH, OrthoHash, DPN, IDHN, Classifier)}
