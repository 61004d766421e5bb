"""Errors the command line reports as one clear message and an exit status (no traceback)."""

# Exit statuses of every subcommand.
EXIT_OK = 0  # every result was expected / nothing to report
EXIT_FAILED = 1  # an unexpected result (run), a traceability error (spec)
EXIT_USAGE = 2  # bad input: unknown backend, bad option value, invalid registry file
EXIT_ENV = 3  # the environment: setup or build failed, binary or driver missing


class UserError(Exception):
    """A problem the user can fix; printed as `mpspec: error: <message>`."""

    def __init__(self, message, status=EXIT_USAGE):
        super().__init__(message)
        self.status = status


class EnvError(UserError):
    """The environment is not ready: packages, build, binaries."""

    def __init__(self, message):
        super().__init__(message, EXIT_ENV)
