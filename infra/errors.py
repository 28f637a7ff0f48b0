from sentimon.core.errors import UserError


class InfraError(UserError):
    """A local-stack problem; the message names the thing and the fix."""


class MissingDependency(InfraError):
    """A binary the local stack needs is not installed."""


class ServiceStartError(InfraError):
    """A service did not become ready; the message carries its log tail."""
