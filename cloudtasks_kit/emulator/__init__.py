"""The local emulator: Cloud Tasks' gRPC and REST APIs over the engine, delivering tasks over real HTTP.

For development and tests, never a production queue. Needs the ``emulator`` extra (aiohttp).
"""

from .server import Emulator

__all__ = ["Emulator"]
