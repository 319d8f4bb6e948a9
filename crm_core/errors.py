"""Domain errors; the web layer maps each to an HTTP status."""


class DomainError(Exception):
    """Base of the errors a service raises on purpose."""


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class Conflict(DomainError):
    pass


class Invalid(DomainError):
    pass
