"""Contender "ours_single": "ours" with the bulk zip downloads off (one GET per image).

For measuring what the bulk path (``invokeai_py_client.run._bulk``) saves; not part of the
default set. Same arguments and output as ``ours.py``.
"""

from __future__ import annotations

from ours import main

from invokeai_py_client.run._state import EngineState

if __name__ == "__main__":
    EngineState.bulk_downloads = False
    main()
