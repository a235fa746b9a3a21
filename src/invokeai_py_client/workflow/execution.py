class WorkflowExecutionMixin:
    """Execution methods (filled in by the execution module)."""
