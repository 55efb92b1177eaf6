"""Assembly of the block-sparse least-squares system."""

from .assemble import assemble as assemble
from .system import LinearSystem as LinearSystem
