"""Batch runs: a sweep submitted in one request, every image on disk, resumable.

Example::

    from invokeai_py_client.run import BatchRun, resume
    from invokeai_py_client.sweep import Sweep

    run = BatchRun(client, wf, Sweep().axis("Width", [32, 64]), "out/run1")
    result = run.run()
    resume("out/run1")          # after a crash: finishes what is left

See :mod:`invokeai_py_client.run.manifest` for the output format.
"""

from invokeai_py_client.run._engine import Progress
from invokeai_py_client.run.batch_run import BatchRun, RunResult, aresume, resume, write_outputs
from invokeai_py_client.run.ledger import Ledger
from invokeai_py_client.run.manifest import read_manifest

__all__ = [
    "BatchRun",
    "Ledger",
    "Progress",
    "RunResult",
    "aresume",
    "read_manifest",
    "resume",
    "write_outputs",
]
