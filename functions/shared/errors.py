"""Errors whose class names Step Functions matches in Catch clauses (the Lambda error type is the class name)."""


class InvalidInput(Exception):
    """The playbook's input does not match its schema, or names a resource outside the pipeline."""


class PlaybookError(Exception):
    """A diagnosis or plan step found the account in a state the playbook cannot handle safely."""
