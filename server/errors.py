"""The errors a request can get, each with TF Serving's HTTP status and gRPC code for it, so the REST
and gRPC APIs answer the same failure the same way (TensorFlow's own messages are put on one line by
`components.common.errors.tensorflow_cause`)."""

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
