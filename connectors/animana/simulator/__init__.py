"""A faithful stand-in for the partner-only IDEXX Animana API: a real HTTP server with deterministic data."""

from .app import SimulatorConfig, create_app
from .config import DEFAULT_ANCHOR, SCALES, GeneratorConfig
from .generator import generate_practice
from .server import RunningSimulator, running_simulator, serve

__all__ = [
    "DEFAULT_ANCHOR",
    "SCALES",
    "GeneratorConfig",
    "RunningSimulator",
    "SimulatorConfig",
    "create_app",
    "generate_practice",
    "running_simulator",
    "serve",
]
