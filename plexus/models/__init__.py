"""Models: `Model` (subclassed, or functional when given inputs and outputs), `Functional`
and `Sequential`."""
from plexus.models.model import Model
from plexus.models.functional import Functional
from plexus.models.sequential import Sequential
from plexus.models.cloning import clone_model
from plexus.saving.api import load_model, model_from_config, model_from_json, save_model
