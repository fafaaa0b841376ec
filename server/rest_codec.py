"""TF Serving's REST encoding: JSON request bodies to tensors, tensors to JSON responses.

The rules are TF Serving's ("RESTful API" guide, `json_tensor.h`), so a client written against
TF Serving works unchanged:
  row format      {"signature_name": S, "instances": [...]}  ->  {"predictions": [...]}
  columnar format {"signature_name": S, "inputs": ... }       ->  {"outputs": ...}
A single-input signature takes its values directly; several inputs take objects keyed by input
name. Binary values (DT_STRING inputs) are {"b64": "..."}; plain strings are UTF-8. In the row
format every input must have the same number of rows; each prediction is the value of the single
output, or an object keyed by output name. String outputs are UTF-8 text unless the output's name
ends in `_bytes` (then {"b64": ...}). A bad request raises `InvalidArgument`, answered as
TF Serving answers it: HTTP 400 with {"error": message}; so does JSON nested deeper than Python's
parser goes or than the input's rank allows, before any of it is converted.
"""

import base64
import binascii
import json

import numpy as np
import tensorflow as tf

from server.errors import InvalidArgument


def parse_body(body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"JSON Parse error: {e}") from None
    except RecursionError:
        raise InvalidArgument(
            "JSON Parse error: nested too deeply (no input of this server's signatures is more than a few levels deep)"
        ) from None
    if not isinstance(request, dict):
        raise InvalidArgument("JSON Value: the request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in request) == ("inputs" in request):
        raise InvalidArgument(
            "Missing 'inputs' or 'instances' key"
            if "instances" not in request
            else "Only one of 'inputs' or 'instances' key may be specified"
        )
    return request


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _leaf(value, spec: tf.TensorSpec):
    """A JSON scalar (or {"b64"}) as what the input's dtype holds."""
    if spec.dtype == tf.string:
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvalidArgument("Unable to base64 decode the 'b64' value") from None
        if isinstance(value, str):
            return value.encode("utf-8")
        raise InvalidArgument(
            f'expected a string or {{"b64": ...}} for a DT_STRING input, got {json.dumps(value)[:80]}'
        )
    if isinstance(value, (dict, str)) or value is None:
        raise InvalidArgument(f"expected a number for a {spec.dtype.name} input, got {json.dumps(value)[:80]}")
    return value


def _tensor(values, spec: tf.TensorSpec, name: str) -> np.ndarray:
    """A nested JSON list as a numpy array of the input's dtype and (known) shape."""
    rank = spec.shape.rank

    def convert(v, depth=0):
        if not isinstance(v, list):
            return _leaf(v, spec)
        if rank is not None and depth >= rank:
            raise InvalidArgument(
                f"input '{name}': lists nested deeper than its rank {rank} (shape "
                f"{spec.shape.as_list()}, None = any size)"
            )
        return [convert(x, depth + 1) for x in v]

    try:
        array = np.array(convert(values), dtype=object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError) as e:
        raise InvalidArgument(
            f"input '{name}': {e} (ragged lists or values out of range for {spec.dtype.name})"
        ) from None
    if array.dtype == object and array.ndim and any(isinstance(x, list) for x in array.flat):
        raise InvalidArgument(f"input '{name}': ragged lists (every row must have the same shape)")
    if not spec.shape.is_compatible_with(array.shape):
        raise InvalidArgument(
            f"input '{name}': shape {list(array.shape)} does not match the signature's "
            f"{spec.shape.as_list()} (None = any size)"
        )
    return array


def decode_inputs(request: dict, specs: dict) -> tuple:
    """(inputs {name: array}, row_format) for a signature whose inputs are `specs` {name: TensorSpec}."""
    names = sorted(specs)
    if "instances" in request:
        instances = request["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidArgument("'instances' must be a non-empty JSON list")
        named = all(isinstance(i, dict) and not _is_b64(i) for i in instances)
        if len(names) > 1 and not named:
            raise InvalidArgument(
                f"the signature has several inputs {names}: each instance must be an object keyed by input name"
            )
        if named:
            columns = {}
            for i, instance in enumerate(instances):
                if set(instance) != set(names):
                    raise InvalidArgument(
                        f"instance {i} has keys {sorted(instance)}; the signature's inputs are {names}"
                    )
                for name in names:
                    columns.setdefault(name, []).append(instance[name])
        else:
            columns = {names[0]: instances}
        return {n: _tensor(columns[n], specs[n], n) for n in names}, True
    inputs = request["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        if set(inputs) != set(names):
            raise InvalidArgument(f"'inputs' has keys {sorted(inputs)}; the signature's inputs are {names}")
        return {n: _tensor(inputs[n], specs[n], n) for n in names}, False
    if len(names) > 1:
        raise InvalidArgument(f"the signature has several inputs {names}: 'inputs' must be an object keyed by name")
    return {names[0]: _tensor(inputs, specs[names[0]], names[0])}, False


def _json_value(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):
            encode = np.vectorize(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, otypes=[object])
        else:
            encode = np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])
        return encode(array).tolist() if array.size else array.tolist()
    return array.tolist()  # NaN and infinities become the tokens NaN / Infinity, as TF Serving writes them


def encode_outputs(outputs: dict, row_format: bool) -> dict:
    """The response body for `outputs` {name: array with the batch first}."""
    names = sorted(outputs)
    if row_format:
        rows = len(next(iter(outputs.values())))
        columns = {n: _json_value(outputs[n], n) for n in names}
        if len(names) == 1:
            return {"predictions": columns[names[0]]}
        return {"predictions": [{n: columns[n][i] for n in names} for i in range(rows)]}
    if len(names) == 1:
        return {"outputs": _json_value(outputs[names[0]], names[0])}
    return {"outputs": {n: _json_value(outputs[n], n) for n in names}}
