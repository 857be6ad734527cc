"""The one exception the analyzer raises for bad input."""


class DataQualityError(ValueError):
    """Bad input: the message names the file, field or line and says how to fix it.

    The container entry point writes the message to the failure file, which AWS shows as the
    processing job's FailureReason.
    """


class NoDataError(DataQualityError):
    """Nothing to analyse: no files, or no captured record in the analysis window.

    Not bad data: a caller checking a quiet endpoint may treat it as "nothing to check"."""
