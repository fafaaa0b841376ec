"""The errors a request can get, each with TF Serving's HTTP status and gRPC code for it, so the REST
and gRPC APIs answer the same failure the same way."""

import re

import grpc


class ServeError(Exception):
    """An error answered as {"error": message} over REST and as (code, message) over gRPC."""

    status, code = 500, grpc.StatusCode.INTERNAL


class InvalidArgument(ServeError):
    status, code = 400, grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServeError):
    status, code = 404, grpc.StatusCode.NOT_FOUND


class Unavailable(ServeError):
    status, code = 503, grpc.StatusCode.UNAVAILABLE


class TooLarge(ServeError):
    status, code = 413, grpc.StatusCode.RESOURCE_EXHAUSTED


class Cancelled(ServeError):
    """The client went away before its request was read (nginx's 499; nobody receives the answer)."""

    status, code = 499, grpc.StatusCode.CANCELLED


_ASSERTION = re.compile(r"assertion failed: \[(.*?)\]\s*$", re.MULTILINE)
_NOISE = re.compile(r"^(Graph execution error:|Detected at node|\s|File |$)")


def tensorflow_cause(message: str) -> str:
    """What TensorFlow's error says went wrong, on one line: the text of a failed assertion (the
    signatures' image checks), else the first line that is not "Graph execution error:", the
    "Detected at node" trace or blank, without the function/node decorations around it."""
    found = _ASSERTION.search(message)
    if found:
        return found.group(1)
    lines = [line for line in message.splitlines() if not _NOISE.match(line)] or [message.strip() or "unknown"]
    cause = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", lines[0])
    return re.sub(r"\s*\[(Op|\[\{\{node)[^\]]*\]+\s*$", "", cause).strip()
