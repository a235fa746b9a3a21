"""``python -m invokeai_py_client.cli ...`` is ``ivk ...``."""

from __future__ import annotations

from .app import main

if __name__ == "__main__":
    main()
