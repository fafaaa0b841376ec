"""TF Serving's gRPC API: `PredictionService` (Predict, GetModelMetadata) and `ModelService`
(GetModelStatus), with `tensorflow-serving-api`'s generated stubs, on the REST server's event loop.

It shares the REST API's predictor (server/predictor.py): the same models, slots,
decoding budget, batches, hot reload and metrics. Tensors travel as TensorProtos (`tf.make_ndarray`,
`tf.make_tensor_proto`); errors are TF Serving's status codes with the REST API's messages.
Classify, Regress and MultiInference answer UNIMPLEMENTED: the model's signatures are predict
signatures, which TF Serving also refuses for them.
"""

import logging

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from server.errors import InvalidArgument, NotFound, ServeError
from server.predictor import Predictor, as_array

log = logging.getLogger(__name__)
_STATE = get_model_status_pb2.ModelVersionStatus.State


def _version(spec) -> int | None:
    return spec.version.value if spec.HasField("version") else None


def _check_name(predictor: Predictor, spec) -> None:
    if spec.name != predictor.versions.name:
        raise NotFound(f"Servable not found for request: Latest({spec.name})")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, predictor: Predictor):
        self._predictor = predictor

    async def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        predictor = self._predictor

        async def decode(servable):
            _check_name(predictor, request.model_spec)
            specs = predictor.signature(servable, request.model_spec.signature_name)
            if set(request.inputs) != set(specs):
                raise InvalidArgument(
                    f"the request's inputs {sorted(request.inputs)} are not the signature's {sorted(specs)}"
                )
            try:
                arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            except (TypeError, ValueError) as e:
                raise InvalidArgument(f"an input TensorProto cannot be read: {e}") from None
            inputs = {name: as_array(name, arrays[name], specs[name]) for name in specs}
            if len({len(a) for a in inputs.values()}) > 1:
                raise InvalidArgument("the inputs have different batch sizes")
            return request.model_spec.signature_name, inputs

        try:
            servable, signature, outputs = await predictor.predict("GRPC", _version(request.model_spec), decode)
        except ServeError as e:
            await context.abort(e.code, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = predictor.versions.name, signature
        response.model_spec.version.value = servable.version
        wanted = set(request.output_filter) or set(outputs)
        for name, value in outputs.items():
            if name in wanted:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    async def GetModelMetadata(self, request, context):
        predictor = self._predictor
        try:
            _check_name(predictor, request.model_spec)
            if list(request.metadata_field) != ["signature_def"]:
                raise InvalidArgument("Metadata field signature_def must be requested (the only one there is)")
            servable = predictor.versions.servable(_version(request.model_spec))
        except ServeError as e:
            await context.abort(e.code, str(e))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = predictor.versions.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(servable.signature_def_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, predictor: Predictor):
        self._predictor = predictor

    async def GetModelStatus(self, request, context):
        predictor = self._predictor
        try:
            _check_name(predictor, request.model_spec)
            statuses = predictor.versions.statuses(_version(request.model_spec))
        except ServeError as e:
            await context.abort(e.code, str(e))
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add(
                version=int(status["version"]), state=_STATE.Value(status["state"])
            )
            entry.status.error_code = 0 if status["status"]["error_code"] == "OK" else 2  # UNKNOWN
            entry.status.error_message = status["status"]["error_message"]
        return response


async def start(predictor: Predictor, host: str, port: int, max_message_bytes: int) -> tuple:
    """(the started grpc.aio server, the port it listens on)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max(max_message_bytes, 64 * 2**20)),
        ]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(predictor), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(predictor), server)
    bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port} for gRPC")
    await server.start()
    return server, bound
