"""Quick helpers on packaged workflows: :class:`QuickClient`.

Example::

    from invokeai_py_client.quick import QuickClient

    qc = QuickClient(client)
    copy = qc.copy_image_to_board("abc.png", "none")
"""

from .client import QuickClient, load_packaged_workflow

__all__ = ["QuickClient", "load_packaged_workflow"]
