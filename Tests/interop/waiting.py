"""Waiting on conditions, with a deadline, instead of sleeping for a guess.

A test that sleeps for a guess is slow when the guess is generous and flaky when it is not;
one that waits for what it needs returns as soon as that holds and fails with a message
when it never does. Sleeps remain only where the protocol needs time to pass (a heartbeat,
a rate limit's window), each with a comment saying so."""

import time
from typing import Callable, TypeVar

T = TypeVar("T")

# How often a condition is looked at again. Conditions here are cheap (a list's length, a
# process's state, a connect() on loopback), so a short interval costs nothing.
POLL_INTERVAL = 0.01


def wait_until(condition: Callable[[], T], timeout: float = 15, message: str = "the condition", interval: float = POLL_INTERVAL) -> T:
    """Returns the condition's first truthy value; fails when `timeout` seconds pass first.
    A condition that acts as well as looks (presses a key again) may ask for a longer
    `interval` between its calls."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def stays(condition: Callable[[], bool], seconds: float, message: str = "the condition") -> None:
    """Checks that `condition` holds throughout `seconds`: for properties of time itself (a
    rate limit's window, a message that must not come), where no later event can stand in."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), f"{message} stopped holding"
        time.sleep(POLL_INTERVAL)
    assert condition(), f"{message} stopped holding"
