"""TF Serving warm-up requests inside the SavedModel: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays the `PredictionLog` records of that file when it loads a version, before the
version serves, so the first clients do not pay the graph's first-call cost (TF Serving's
"SavedModel Warmup" guide; TFX's InfraValidator writes the same file). The records are built
with `tensorflow-serving-api`'s own protos: one `PredictRequest` per val image for
`serving_default`, holding the encoded bytes a REST or gRPC client sends. The push copies the
SavedModel, so every pushed version carries the file; `python -m pipeline.serve` replays it
(server/servables.py) as TF Serving does.
"""

import os

import tensorflow as tf

FILE = "tf_serving_warmup_requests"
SIGNATURE, INPUT = "serving_default", "images"
MAX_RECORDS = 1000  # TF Serving reads at most this many


def path(saved_model_dir: str) -> str:
    return os.path.join(saved_model_dir, "assets.extra", FILE)


def write(saved_model_dir: str, encoded_images) -> str:
    """One `serving_default` request per encoded image (at most MAX_RECORDS); returns the file's path."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    out = path(saved_model_dir)
    tf.io.gfile.makedirs(os.path.dirname(out))
    with tf.io.TFRecordWriter(out) as writer:
        for encoded in list(encoded_images)[:MAX_RECORDS]:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = SIGNATURE
            request.inputs[INPUT].CopyFrom(tf.make_tensor_proto([encoded], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return out


def read(file_path: str) -> list:
    """The `PredictRequest`s of a warm-up file (what TF Serving replays), in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(file_path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
