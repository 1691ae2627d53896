"""Models: `Model` (functional or subclassed) and `Sequential`."""
from plexus.models.model import Model
from plexus.models.sequential import Sequential

Functional = Model
from plexus.models.cloning import clone_model
from plexus.saving.api import load_model, model_from_config, model_from_json, save_model
