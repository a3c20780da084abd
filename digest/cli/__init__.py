"""The ``digest`` command: a thin click layer over the library, one module per family.

The modules of the commands are loaded when a command needs them (``_app.COMMANDS``).
"""

from ._app import main

__all__ = ["main"]
