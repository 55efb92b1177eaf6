"""Basis families: one file per family, each implementing `AbstractBasis`."""

from .base import AbstractBasis as AbstractBasis
from .mlp import MLP as MLP
from .periodic import PeriodicInput as PeriodicInput
from .polynomial import Polynomial as Polynomial
from .random_features import RandomFeatures as RandomFeatures
