"""Domain errors. Each carries a stable ``code`` and the HTTP status the API maps it to;
messages name the rule and the offending value. Raised by every layer, mapped once in
``hashsvc.api.errors``."""

from __future__ import annotations


class HashsvcError(Exception):
    """Base of every error a client can cause."""

    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownSignal(HashsvcError):
    code = "unknown_signal"
    status = 422


class InvalidHash(HashsvcError):
    code = "invalid_hash"
    status = 422


class LowInformationHash(HashsvcError):
    code = "low_information_hash"
    status = 422


class MediaRejected(HashsvcError):
    """The bytes are not a decodable, allowed, reasonably sized image."""

    code = "media_rejected"
    status = 422

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MediaTooLarge(MediaRejected):
    status = 413


class NotAuthorized(HashsvcError):
    """Missing, malformed, unknown, revoked or wrong-kind credentials."""

    code = "not_authorized"
    status = 401


class Forbidden(HashsvcError):
    """Valid credentials without the scope the route needs."""

    code = "forbidden"
    status = 403


class RateLimited(HashsvcError):
    """A quota is exhausted; ``retry_after`` says when one more request would be allowed."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PlatformNotFound(HashsvcError):
    code = "platform_not_found"
    status = 404

    def __init__(self, platform_id: str, key_id: str | None = None) -> None:
        what = f"key {key_id!r} of platform {platform_id!r}" if key_id else repr(platform_id)
        super().__init__(f"no {what}")


class CaseNotFound(HashsvcError):
    """Unknown case *or* wrong secret: the two are deliberately indistinguishable."""

    code = "case_not_found"
    status = 404

    def __init__(self) -> None:
        super().__init__("no case with this id and secret")


class RequestTooLarge(HashsvcError):
    code = "request_too_large"
    status = 413


class BadRequest(HashsvcError):
    code = "bad_request"
    status = 400


class InvalidRequest(HashsvcError):
    """A well-formed body that breaks the route's schema (an unknown field, a wrong type):
    422 ``invalid_request``, as FastAPI answers for the bodies it validates itself."""

    code = "invalid_request"
    status = 422


class FlagNotFound(HashsvcError):
    """Unknown flag, or a flag of another platform (indistinguishable)."""

    code = "flag_not_found"
    status = 404

    def __init__(self, flag_id: str) -> None:
        # The id is not echoed: another platform's flag and a nonexistent one answer alike.
        super().__init__("no such flag for this platform")


class FlagWithdrawn(HashsvcError):
    code = "flag_withdrawn"
    status = 409

    def __init__(self, flag_id: str) -> None:
        super().__init__(f"flag {flag_id!r} was withdrawn by the victim: nothing to act on")


class JobNotFound(HashsvcError):
    """Unknown job, or a job of another platform (indistinguishable)."""

    code = "job_not_found"
    status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__("no such scan job for this platform")


class Overloaded(HashsvcError):
    code = "overloaded"
    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
