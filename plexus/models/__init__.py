"""Models: `Model` (functional or subclassed) and `Sequential`."""
from plexus.models.model import Model
from plexus.models.sequential import Sequential

Functional = Model
