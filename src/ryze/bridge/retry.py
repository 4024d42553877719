"""One retry policy for both relay directions, built on the Chatwoot client's classification.

``ryze.chatwoot.errors`` already says what a failure is (401, 404, 429 with ``Retry-After``, 5xx,
no answer, other 4xx; ``retryable``); :func:`classify` maps that onto what the relay does about it
(:class:`Failure`), and :class:`RetryPolicy` turns it into a delay and a weight toward giving up:

* attempts only count while Chatwoot is otherwise making progress (a throttled or transient
  failure during an outage counts a quarter), so an outage delays messages but never discards
  them, while a message Chatwoot keeps refusing on its own is given up after ``max_attempts``;
* a refusal of the whole integration (401, inbox gone) waits longer and does not count at all;
* a failure that may have taken effect (5xx, timeout, dropped connection, a bug after the create)
  is *ambiguous*: the next attempt checks Chatwoot before creating again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from ryze.bridge.errors import IntegrationBlocked
from ryze.chatwoot.errors import ChatwootAuthError, ChatwootError, ChatwootNotFound, ChatwootRateLimited


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff."""
    return random.uniform(base / 2, min(cap, base * (2 ** min(attempt, 20))))


class Failure(Enum):
    BLOCKED = "blocked"  # the integration as a whole is refused (IntegrationBlocked)
    AUTH = "auth"  # 401: the token was revoked; reported on the integration's status
    NOT_FOUND = "not_found"  # 404: a conversation (or the inbox: check it) is gone
    THROTTLED = "throttled"  # 429, maybe with Retry-After
    TRANSIENT = "transient"  # 5xx, timeout, no answer: may have taken effect
    REFUSED = "refused"  # another 4xx, or an answer the client could not read: the message itself
    UNEXPECTED = "unexpected"  # not a Chatwoot failure: a bug or unexpected data


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, IntegrationBlocked):
        return Failure.BLOCKED
    if not isinstance(exc, ChatwootError):
        return Failure.UNEXPECTED
    if isinstance(exc, ChatwootAuthError):
        return Failure.AUTH
    if isinstance(exc, ChatwootNotFound):
        return Failure.NOT_FOUND
    if isinstance(exc, ChatwootRateLimited):
        return Failure.THROTTLED
    if exc.retryable:  # ChatwootServerError, ChatwootTimeout, ChatwootUnreachable
        return Failure.TRANSIENT
    return Failure.REFUSED


# Failures after which the effect may exist in Chatwoot although the call failed.
AMBIGUOUS = frozenset({Failure.TRANSIENT, Failure.UNEXPECTED})
_BLOCKED_STEPS = 3  # a refused integration starts its backoff this many steps further


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    max_attempts: int

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.base_seconds, self.max_seconds)

    def delay(self, failure: Failure, attempt: int, exc: BaseException | None = None) -> float:
        """How long to wait before attempt ``attempt + 1`` after ``failure``."""
        if failure in (Failure.BLOCKED, Failure.AUTH):
            return self.backoff(attempt + _BLOCKED_STEPS)
        if isinstance(exc, ChatwootRateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return self.backoff(attempt)

    @staticmethod
    def weight(failure: Failure, *, progressing: bool) -> float:
        """How much one failed attempt counts toward ``max_attempts``.

        ``progressing``: Chatwoot completed other work since the attempt started (it is up)."""
        if failure in (Failure.BLOCKED, Failure.AUTH):
            return 0.0
        if failure in (Failure.THROTTLED, Failure.TRANSIENT):
            return 1.0 if progressing else 0.25
        return 1.0

    def exhausted(self, counted: float) -> bool:
        return counted >= self.max_attempts


# Marking a Chatwoot message failed after its job was given up: a few quick tries, no more.
STATUS_UPDATE = RetryPolicy(base_seconds=0.5, max_seconds=5.0, max_attempts=3)
