"""Blocking handlers on the asyncio server: each call on a thread of the pool, seen through a
context that behaves as grpcio's synchronous one.

The server is a ``grpc.aio`` server so that long streams (Watch, WatchMembers) wait on the
event loop instead of each holding a thread. Get, GetMany, Scan, Locate, ListTables, health
and reflection stay blocking code (LMDB reads, waits for offsets, forwarded calls): this
interceptor, the innermost, turns each such handler into a coroutine that runs it on the
pool. grpcio's own fallback for blocking handlers does not serve them: its context has no
``is_active``, ``code`` or stream callbacks, its ``abort`` does not raise, and it sends an
unexpected exception's text to the client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from goka.errors import ReadError

__all__ = ["InProcessContext", "SyncHandlers"]

_logger = logging.getLogger("viewsvc.server")
_END = object()


class _Aborted(Exception):
    """Raised by ``abort()`` in a blocking handler, as grpcio's synchronous server does."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _SyncContext:
    """What a blocking handler sees of its call (the parts of grpc.ServicerContext used)."""

    def __init__(self, context: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._context = context
        self._loop = loop
        self._callbacks: list[Callable[[], None]] = []
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self.active = True

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def time_remaining(self) -> float | None:
        remaining: float | None = self._context.time_remaining()
        return remaining

    def peer(self) -> str:
        peer: str = self._context.peer()
        return peer

    def is_active(self) -> bool:
        return self.active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """``callback`` runs when the call ends, however it ends."""
        self._callbacks.append(callback)
        return True

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._context.set_trailing_metadata(metadata)

    def send_initial_metadata(self, metadata: Any) -> None:
        asyncio.run_coroutine_threadsafe(
            self._context.send_initial_metadata(metadata), self._loop
        ).result()

    def finish(self) -> None:
        """The call ended: pass a status set with set_code on, and run the callbacks."""
        self.active = False
        if self._code is not None:
            self._context.set_code(self._code)
        if self._details is not None:
            self._context.set_details(self._details)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _logger.exception("a call's end callback failed")


class InProcessContext:
    """The context of a blocking handler called in-process, not over gRPC: ``abort`` raises
    ReadError; no metadata; ``timeout`` seconds to answer."""

    def __init__(self, timeout: float) -> None:
        self._deadline = time.monotonic() + timeout

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise ReadError(code, details)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def time_remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())


class SyncHandlers(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Runs every blocking unary-unary and unary-stream handler on ``pool``."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or handler.request_streaming:
            return handler  # client streams (reflection) run on grpcio's migration pool
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        method = details.method
        if handler.unary_unary is not None and not _is_async(handler.unary_unary):
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method), **serializers
            )
        if handler.unary_stream is not None and not _is_async(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method), **serializers
            )
        return handler

    def _unary(self, behavior: Callable[[Any, Any], Any], method: str) -> Any:
        pool = self._pool

        async def unary(request: Any, context: Any) -> Any:
            loop = asyncio.get_running_loop()
            sync = _SyncContext(context, loop)
            try:
                response = await loop.run_in_executor(pool, behavior, request, sync)
            except _Aborted as aborted:
                sync.finish()
                await context.abort(aborted.code, aborted.details)
            except asyncio.CancelledError:
                sync.finish()
                raise
            except Exception:
                sync.finish()
                await context.abort(*_internal(method))
            sync.finish()
            return response

        return unary

    def _stream(self, behavior: Callable[[Any, Any], Iterator[Any]], method: str) -> Any:
        pool = self._pool

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            loop = asyncio.get_running_loop()
            sync = _SyncContext(context, loop)
            try:
                responses = iter(await loop.run_in_executor(pool, behavior, request, sync))
                while True:
                    response = await loop.run_in_executor(pool, next, responses, _END)
                    if response is _END:
                        break
                    yield response
            except _Aborted as aborted:
                sync.finish()
                await context.abort(aborted.code, aborted.details)
            except (asyncio.CancelledError, GeneratorExit):
                sync.finish()  # the client cancelled: the callbacks stop what it waited for
                raise
            except Exception:
                sync.finish()
                await context.abort(*_internal(method))
            sync.finish()

        return stream


def _is_async(behavior: Any) -> bool:
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


def _internal(method: str) -> tuple[grpc.StatusCode, str]:
    """Logs the exception being handled; the status for the client, without its text."""
    _logger.exception("%s failed", method)
    return (
        grpc.StatusCode.INTERNAL,
        f"{method} failed with an internal error (in the server's log); retry, or report it "
        "with that log",
    )
