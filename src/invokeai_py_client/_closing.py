"""``with obj:`` for objects that have a ``close()``: one definition of the protocol."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["ClosesOnExit"]


class ClosesOnExit:
    """Base class: ``with obj:`` gives ``obj`` back and calls ``obj.close()`` when leaving.

    Subclasses define :meth:`close`.

    Example::

        class Resource(ClosesOnExit):
            def close(self) -> None: ...

        with Resource() as res:
            ...  # res.close() runs on the way out, also after an exception
    """

    def close(self) -> None:
        """Release what the object holds (subclasses override)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
