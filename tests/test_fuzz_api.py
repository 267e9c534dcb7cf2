"""Schemathesis against the live OpenAPI spec of a running service: every operation, with a key of each role
and with none.

No example may get a 5xx, and every answer must match what the spec documents for it: status code, media type,
headers and body schema. Generated bodies that the spec says are invalid must be refused (negative mode).
The service runs with the real local LLM, so tagging and talking points are fuzzed through it too.

``positive_data_acceptance`` is the one check left out: some valid-looking input is refused by design with a
422 the spec cannot express (a need naming a dimension the active taxonomy lacks, a cursor this API never
issued, min_confidence above max_confidence); those answers are still checked against the documented 422 body.
``HCP_FUZZ_EXAMPLES`` sets the examples per operation and role (default 12).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from service.auth.roles import ROLES
from service.settings import Settings

from .api_helpers import SUBSET, HttpApi, start_http, stop_http
from .conftest import SMOLLM_ALIAS

EXAMPLES = int(os.environ.get("HCP_FUZZ_EXAMPLES", "12"))

# A hang guard, not a speed claim: a role's run takes 2-6 minutes on two cores (idle to loaded). pytest-timeout's
# alarm raises inside the Hypothesis test, which takes it for a failing example, replays it, sees it pass and
# reports only "unreliable results"; ``FailedCall`` records what the alarm interrupted, should it ever fire.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, llm_server) -> Iterator[HttpApi]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data", llm_mode="remote",
                        llm_base_url=llm_server.base_url, llm_model=SMOLLM_ALIAS,
                        llm_structured_output="json_object", llm_timeout_s=300, worker_poll_s=0.1,
                        retrain_after_reviews=10_000, rate_limit_per_minute=1_000_000)
    api = start_http(settings)
    api.ingest(SUBSET[:4])
    yield api
    stop_http(api)


@dataclass
class FailedCall:
    """One response that failed a check, as it was: Hypothesis re-runs a failing example, and when the re-run
    passes (an LLM answer differs, or is cached by then) it reports only "unreliable results"."""

    request: str
    status: int | None  # None: no answer came (the call raised, or pytest's timeout fired while it waited)
    elapsed_s: float
    body: str
    checks: str

    def __str__(self) -> str:
        answer = "no answer" if self.status is None else f"HTTP {self.status}"
        return (f"first failing call: {self.request}\n-> {answer} after {self.elapsed_s:.1f} s\n"
                f"body: {self.body}\nfailed checks:\n{self.checks}")


def _checks_that_failed(exc: BaseException) -> str:
    """Every leaf failure of schemathesis' FailureGroup, with its own message (not the group's summary)."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(_checks_that_failed(sub) for sub in exc.exceptions)
    return "".join(traceback.format_exception_only(exc)).strip()


def _examples(api: HttpApi, role: str | None, strategy: SearchStrategy[schemathesis.Case], examples: int,
              failed: list[FailedCall]) -> Callable[[], None]:
    """The Hypothesis test for one operation; every call that fails a check is appended to ``failed``. Without
    a role (``None``) no key is sent: every API operation must answer 401 ``missing_api_key``."""

    @seed(20261123)
    @given(case=strategy)
    @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        started = time.monotonic()
        response = None
        try:
            response = case.call(headers=api.h(role) if role else {}, timeout=600)
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            if role is None and case.path.startswith("/v1/"):
                assert (response.status_code, response.json()["code"]) == (401, "missing_api_key"), response.text
        except BaseException as exc:  # a FailureGroup of checks, a transport error, or pytest's timeout
            failed.append(FailedCall(
                request=f"{case.method} {case.formatted_path} body={case.body!r:.1500}",
                status=None if response is None else response.status_code,
                elapsed_s=time.monotonic() - started, body="" if response is None else response.text[:3000],
                checks=_checks_that_failed(exc)[:3000]))
            raise

    return check


def _fuzz(api: HttpApi, role: str | None, mode: GenerationMode, examples: int,
          exercised: list[str] | None = None) -> dict[str, str]:
    """Failures by operation (empty when every example passed every check), each with its first failing call;
    ``exercised`` collects the operations that ran examples (negative mode skips those it cannot make invalid)."""
    schema = schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    exercised = [] if exercised is None else exercised
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            strategy = operation.as_strategy(generation_mode=mode)
        except Exception as exc:  # an operation without inputs has no negative examples
            if mode is GenerationMode.NEGATIVE:
                continue
            raise AssertionError(f"{operation.label}: no strategy: {exc}") from exc

        failed: list[FailedCall] = []
        try:
            _examples(api, role, strategy, examples, failed)()
        except BaseException as exc:
            message = str(exc)
            if mode is GenerationMode.NEGATIVE and "Unable to satisfy assumptions" in message:
                continue  # nothing about this operation's inputs can be made invalid (e.g. a bare GET)
            first = f"\n{failed[0]}" if failed else ""
            failures[operation.label] = f"{message[:1500]}{first}"
        exercised.append(operation.label)
    assert operations >= 25, f"the spec lists only {operations} operations"
    return failures


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_within_its_documented_schema(live: HttpApi, role: str) -> None:
    failures = _fuzz(live, role, GenerationMode.POSITIVE, EXAMPLES)
    assert not failures, "\n\n".join(f"== {op}\n{msg}" for op, msg in failures.items())


def test_invalid_requests_are_refused_with_the_error_shape(live: HttpApi) -> None:
    exercised: list[str] = []
    failures = _fuzz(live, "admin", GenerationMode.NEGATIVE, max(4, EXAMPLES // 2), exercised)
    assert not failures, "\n\n".join(f"== {op}\n{msg}" for op, msg in failures.items())
    # most operations take something that can be made invalid: skipping them all would pass for nothing
    assert len(exercised) >= 25, exercised


def test_every_operation_without_a_key_is_refused_and_never_a_5xx(live: HttpApi) -> None:
    exercised: list[str] = []
    failures = _fuzz(live, None, GenerationMode.POSITIVE, 3, exercised)
    assert not failures, "\n\n".join(f"== {op}\n{msg}" for op, msg in failures.items())
    assert len(exercised) >= 25, exercised

