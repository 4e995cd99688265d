"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input or configuration: reported as one clear line, never as a stack trace."""

    exit_code = 2


class ConfigError(UserError):
    """A setting has a value that is not allowed."""

    def __init__(self, setting: str, message: str):
        self.setting = setting
        super().__init__(f"setting '{setting}': {message}")


class SourceError(UserError):
    """The landing data cannot be used (missing folder, no files, unreadable profile)."""


class PipelineError(Exception):
    """An invariant of the pipeline broke (for example the reconciliation); a bug, not bad input."""

    exit_code = 3
