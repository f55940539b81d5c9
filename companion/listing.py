"""The book shows the code it tests: a chapter displays a companion function's own source, so the
algorithm a reader studies is the one ``tests/`` checks, never a second copy that could drift."""

from __future__ import annotations

import inspect
from typing import Any, Callable


def show(obj: Callable[..., Any] | type) -> Any:
    """The source of a companion function or class as an IPython ``Code`` object (highlighted as
    Python in a notebook and in the rendered book; plain text elsewhere)."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
