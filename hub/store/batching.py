"""Requests that arrive together, decided together: one transaction for a batch of them.

A service whose requests each cost a few statements (an incident's intake, a stock request)
gives them to a ``Batcher``: while one batch is being written, the requests that arrive wait,
and go together as the next batch, one job of the database (``Runner.run``). The batch's
function answers each request on its own: a request's own error is its answer and spoils none
of the others; an error of the batch as a whole (the database away, retries spent) is every
request's answer. One batch in flight per batcher, so the requests of a batch see the effects
of the batches before them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

from hub.store.db import Runner, Tx

I = TypeVar("I")  # noqa: E741 - a request
R = TypeVar("R")  # its answer


class Batcher(Generic[I, R]):
    def __init__(
        self,
        db: Runner,
        write_in: Callable[[Tx, Sequence[I]], Sequence[R | Exception]],
        *,
        name: str,
        max_batch: int = 128,
    ) -> None:
        self._db = db
        self._write_in = write_in
        self._name = name
        self._max_batch = max_batch
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, request: I) -> R:
        """``request``'s answer, decided with those that arrive while a batch is written."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            self._waiting = self._waiting[self._max_batch :]
            requests = [request for request, _ in batch]
            answers: Sequence[R | Exception]
            try:
                answers = await self._db.run(partial(self._write_in_batch, requests))
            except Exception as exc:  # the batch as a whole failed
                answers = [exc] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():  # its caller gave up waiting
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def _write_in_batch(self, requests: Sequence[I], tx: Tx) -> Sequence[R | Exception]:
        answers = self._write_in(tx, requests)
        if len(answers) != len(requests):
            raise AssertionError(f"{self._name}: {len(answers)} answers to {len(requests)}")
        return answers
