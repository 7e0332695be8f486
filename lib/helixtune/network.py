"""Helixer's HybridModel network (spec helixer-formats.md §2.2, §3.1, §5) on tf_keras (Keras 2).

Everything TensorFlow is imported lazily inside the functions, so importing this module is cheap.
Never use plain Keras 3 (``tf.keras`` in TF 2.20): it cannot read Helixer model files.

Layer names follow Helixer exactly (``main_input``, ``conv1d[_k]``, ``batch_normalization[_k]``,
``reshape``, ``bidirectional[_k]``, ``dense``, ``tf.split``, ``reshape_hat``, ``reshape_hat1``,
``genic``, ``phase``; without phase ``reshape_hat`` and ``main``); they are set explicitly, so
they do not depend on how many models the process built before.
"""
import json
import logging
import os

log = logging.getLogger("helixtune.network")

N_BASE_CHANNELS = 4
# TensorFlow is an optional extra: the data tools install and run without it.
INSTALL_HINT = 'pip install "helixtune[model]"'


def require_tensorflow(prog):
    """Fail with one line saying what to install when TensorFlow or tf_keras is missing; checked
    without importing them, so a tool can say so before any work."""
    import importlib.util

    for name in ("tensorflow", "tf_keras"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            from helixtune.cli import UserError
            raise UserError(f"{prog} needs TensorFlow, and {name} is not installed: "
                            f"{INSTALL_HINT}")


def tf_modules():
    """(tensorflow, tf_keras), imported on first use with TensorFlow's C++ log silenced (its
    ERROR lines included: on machines without a GPU every run logs a failed ``cuInit``); with
    --debug only its INFO and WARNING lines are. A TF_CPP_MIN_LOG_LEVEL set by the user wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if log.isEnabledFor(logging.DEBUG) else "3")
    try:
        import tensorflow as tf
        import tf_keras
    except ImportError as e:
        from helixtune.cli import UserError
        raise UserError(f"TensorFlow cannot be imported ({e}): {INSTALL_HINT}") from e
    return tf, tf_keras


def tf_threads():
    """TensorFlow's CPU threads: ``HELIXTUNE_TF_THREADS`` if set, within
    :func:`cli.thread_budget` (``HELIXTUNE_THREADS``, CPU affinity and cgroup quota)."""
    from helixtune.cli import thread_budget

    return thread_budget(int(os.environ.get("HELIXTUNE_TF_THREADS", "0")) or None)


def setup_tensorflow(threads=None, gpu_id=-1, float_precision="float32"):
    """Configure TensorFlow before any op runs: CPU threads, visible GPU, Keras float type.

    ``threads`` None: TensorFlow's default (all cores). Safe to call more than once; settings that
    can no longer be changed (runtime already initialised) are left as they are."""
    tf, K = tf_modules()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:
            pass
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        log.info("TensorFlow sees no GPU: running on the CPU (--debug shows why)")
    if gpu_id is not None and gpu_id >= 0:
        if gpu_id >= len(gpus):
            from helixtune.cli import UserError
            raise UserError(f"--gpu-id {gpu_id}: only {len(gpus)} GPU(s) visible", code=2)
        try:
            tf.config.set_visible_devices(gpus[gpu_id], "GPU")
        except RuntimeError:
            pass
    if float_precision == "mixed_float16":
        K.mixed_precision.set_global_policy("mixed_float16")
    elif float_precision:
        K.backend.set_floatx(float_precision)
    return tf, K


def _rename(tensor, name):
    """Give the layer that produced ``tensor`` (e.g. a TFOpLambda) a fixed name."""
    tensor._keras_history.layer._name = name
    return tensor


def _body(x, cnn_layers, lstm_layers, units, filter_depth, kernel_size, pool_size,
          dropout1, dropout2):
    """Conv1D/BatchNorm stack, regroup by ``pool_size``, BiLSTMs (spec §2.2 steps 2-7)."""
    _, K = tf_modules()
    L = K.layers
    for i in range(cnn_layers):
        if i > 0:
            x = L.BatchNormalization(name="batch_normalization" + (f"_{i - 1}" if i > 1 else ""))(x)
        x = L.Conv1D(filter_depth, kernel_size, padding="same", activation="relu",
                     name="conv1d" + (f"_{i}" if i else ""))(x)
    x = L.Reshape((-1, pool_size * filter_depth), name="reshape")(x)
    n_dropout = 0
    if dropout1 > 0:
        x = L.Dropout(dropout1, name="dropout")(x)
        n_dropout += 1
    for i in range(lstm_layers):
        x = L.Bidirectional(L.LSTM(units, return_sequences=True),
                            name="bidirectional" + (f"_{i}" if i else ""))(x)
    if dropout2 > 0:
        x = L.Dropout(dropout2, name="dropout" + (f"_{n_dropout}" if n_dropout else ""))(x)
    return x


def model_hat(x, pool_size, predict_phase, coverage=None, n_coverage_channels=0,
              hidden_units=None, hidden_activation="relu", split_name="tf.split"):
    """The output head: [coverage concat, hidden Dense,] Dense, reshape, softmax (spec §2.2 8-9).

    ``coverage``: a (B, L, 2n) tensor regrouped to (B, L/P, P*2n) and concatenated after ``x``.
    ``hidden_units``: add Dense(hidden_units) named ``dense`` (the output Dense is then
    ``dense_1``); ``hidden_activation`` None gives Helixer's linear hidden layer.
    Returns the list of outputs ([genic, phase] or [main])."""
    tf, K = tf_modules()
    L = K.layers
    if coverage is not None:
        cov = L.Reshape((-1, pool_size * n_coverage_channels), name="reshape_cov")(coverage)
        x = _rename(tf.concat([x, cov], axis=-1), "tf.concat")
    out_name = "dense"
    if hidden_units:
        x = L.Dense(hidden_units, activation=hidden_activation, name="dense")(x)
        out_name = "dense_1"
    if predict_phase:
        x = L.Dense(pool_size * 4 * 2, name=out_name)(x)
        genic, phase = tf.split(x, 2, axis=-1)
        _rename(genic, split_name)
        genic = L.Reshape((-1, pool_size, 4), name="reshape_hat")(genic)
        phase = L.Reshape((-1, pool_size, 4), name="reshape_hat1")(phase)
        return [L.Activation("softmax", name="genic")(genic),
                L.Activation("softmax", name="phase")(phase)]
    x = L.Dense(pool_size * 4, name=out_name)(x)
    x = L.Reshape((-1, pool_size, 4), name="reshape_hat")(x)
    return [L.Activation("softmax", name="main")(x)]


def build_model(cnn_layers=1, lstm_layers=1, units=32, filter_depth=32, kernel_size=26,
                pool_size=9, dropout1=0.0, dropout2=0.0, predict_phase=False, n_bams=0,
                post_coverage_hidden_layer=False, hidden_activation="relu"):
    """A new, randomly initialised HybridModel from the architecture flags (Helixer defaults).

    ``n_bams`` > 0 builds the from-scratch coverage variant of spec §3.1: input ``raw_input``
    with 4 + 2n channels split into bases and coverage; coverage joins in the head."""
    tf, K = tf_modules()
    if n_bams:
        inp = K.Input(shape=(None, N_BASE_CHANNELS + 2 * n_bams), name="raw_input")
        x, cov = tf.split(inp, [N_BASE_CHANNELS, 2 * n_bams], axis=-1)
        _rename(x, "tf.split")
    else:
        inp = K.Input(shape=(None, N_BASE_CHANNELS), name="main_input")
        x, cov = inp, None
    x = _body(x, cnn_layers, lstm_layers, units, filter_depth, kernel_size, pool_size,
              dropout1, dropout2)
    outputs = model_hat(x, pool_size, predict_phase, coverage=cov, n_coverage_channels=2 * n_bams,
                        hidden_units=units // 2 if (n_bams and post_coverage_hidden_layer) else None,
                        hidden_activation=hidden_activation,
                        split_name="tf.split_1" if n_bams else "tf.split")
    return K.Model(inp, outputs, name="model")


def build_from_args(args, n_bams=0):
    """``build_model`` with the architecture options of HybridModel.py."""
    return build_model(args.cnn_layers, args.lstm_layers, args.units, args.filter_depth,
                       args.kernel_size, args.pool_size, args.dropout1, args.dropout2,
                       args.predict_phase, n_bams=n_bams,
                       post_coverage_hidden_layer=getattr(args, "post_coverage_hidden_layer",
                                                          False))


def _dense_index(model):
    names = [layer.name for layer in model.layers]
    if "dense" not in names:
        from helixtune.cli import UserError
        raise UserError(f"model {model.name!r} has no layer named 'dense' (not a HybridModel?)")
    return names.index("dense")


def body_output_index(model, keep_last_lstm=True):
    """Index of the layer whose output feeds the head: the layer before ``dense`` (or, with
    Helixer's coverage quirk, the one before that: the last BiLSTM is dropped)."""
    return _dense_index(model) - (1 if keep_last_lstm else 2)


def freeze(model):
    """Set every layer (nested ones included) non-trainable."""
    model.trainable = False
    for layer in model.layers:
        layer.trainable = False


def fine_tune_head(model, pool_size, predict_phase=True):
    """--fine-tune without coverage: freeze ``model`` and put a new random head on its body.

    Only the new ``dense`` is trainable (spec §3.1)."""
    _, K = tf_modules()
    n_in = model.inputs[0].shape[-1]
    if n_in != N_BASE_CHANNELS:
        from helixtune.cli import UserError
        raise UserError(f"--fine-tune without --input-coverage needs a model with 4 input "
                        f"channels; this one has {n_in} (a coverage model? use "
                        f"--fine-tune-resume)")
    freeze(model)
    x = model.layers[body_output_index(model)].output
    outputs = model_hat(x, pool_size, predict_phase)
    return K.Model(model.inputs[0], outputs, name="model")


def insert_coverage_before_hat(model, n_bams, pool_size, predict_phase=True,
                               post_coverage_hidden_layer=False, hidden_units=16,
                               hidden_activation="relu", keep_last_lstm=True):
    """--fine-tune --input-coverage: new input (4 + 2n channels), frozen body, coverage head.

    The body is a nested sub-model named ``model`` fed ``input[..., :4]``; ``input[..., 4:]`` is
    regrouped to (-1, P*2n) and concatenated after the body's features, then an optional hidden
    Dense (``hidden_activation``; None = Helixer's linear layer) and a new head.
    ``keep_last_lstm`` False reproduces Helixer 0.3.6, which drops the last BiLSTM."""
    _, K = tf_modules()
    L = K.layers
    freeze(model)
    body = K.Model(model.inputs[0], model.layers[body_output_index(model, keep_last_lstm)].output,
                   name="model")
    freeze(body)
    inp = K.Input(shape=(None, N_BASE_CHANNELS + 2 * n_bams), name="main_input")
    bases = _rename(inp[..., :N_BASE_CHANNELS], "tf.__operators__.getitem")
    cov = _rename(inp[..., N_BASE_CHANNELS:], "tf.__operators__.getitem_1")
    x = body(bases)
    cov = L.Reshape((-1, pool_size * 2 * n_bams), name="reshape")(cov)
    x = _rename(tf_modules()[0].concat([x, cov], axis=-1), "tf.concat")
    outputs = model_hat(x, pool_size, predict_phase,
                        hidden_units=hidden_units if post_coverage_hidden_layer else None,
                        hidden_activation=hidden_activation)
    return K.Model(inp, outputs, name="model_with_coverage")


def set_trainable_from_dense(model):
    """--fine-tune-resume: layers from ``dense`` on trainable, earlier ones (and a nested body)
    frozen. For models with a hidden layer ``dense`` this includes it."""
    at = _dense_index(model)
    model.trainable = True
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= at
        if i < at and hasattr(layer, "layers"):
            freeze(layer)


def set_all_trainable(model):
    """--resume-training: every layer trainable (saved models carry trainable=false)."""
    model.trainable = True
    for layer in model.layers:
        layer.trainable = True
        if hasattr(layer, "layers"):
            set_all_trainable(layer)


# ---- files -------------------------------------------------------------------------------------

def load_model(path):
    """Load a Helixer/helixtune model file (legacy Keras 2 HDF5) without its optimizer.

    ``compile=False``: the training config (e.g. optimizer 'Addons>AdamW') is not needed and
    would need tensorflow_addons. Errors become ``UserError`` naming the file."""
    from helixtune.cli import UserError
    if not os.path.isfile(path):
        raise UserError(f"model file {path!r} does not exist")
    import h5py
    try:
        with h5py.File(path, "r") as h5:
            if "model_config" not in h5.attrs:
                raise UserError(f"{path}: not a Keras model file (no model_config attribute; "
                                "a weights-only file?)")
    except OSError as e:
        raise UserError(f"{path}: not an HDF5 model file ({e})") from None
    _, K = tf_modules()
    try:
        return K.models.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{path}: cannot load the model: {e}") from None


def save_model(model, path, include_optimizer=True):
    """Save as legacy Keras 2 HDF5 (what Helixer 0.3.6 / TF 2.15 load)."""
    model.save(path, save_format="h5", include_optimizer=include_optimizer)


def _outputs_pool_size(config):
    """Pool size from a Functional config: the Reshape whose target is (-1, P, 4)."""
    for layer in config["config"]["layers"]:
        cls, cfg = layer["class_name"], layer["config"]
        if cls == "Reshape" and len(cfg["target_shape"]) == 3:
            return int(cfg["target_shape"][1])
    for layer in config["config"]["layers"]:  # a nested sub-model (coverage models)
        if layer["class_name"] in ("Functional", "Model"):
            found = _outputs_pool_size(layer)
            if found:
                return found
    return None


def model_config_of_file(path):
    """The model JSON string stored in a model file (attribute ``model_config``)."""
    import h5py
    with h5py.File(path, "r") as h5:
        value = h5.attrs["model_config"]
    return value.decode() if isinstance(value, bytes) else str(value)


def pool_size_from_file(path):
    """The pool size (bases per time step) as stored in a model file; never a default.

    Read from the head's Reshape (-1, P, 4) in ``model_config`` (named ``reshape_hat`` or, in
    the released models, ``reshape_1``), else from the output Dense bias (8P or 4P values)."""
    from helixtune.cli import UserError
    import h5py
    try:
        config = json.loads(model_config_of_file(path))
        found = _outputs_pool_size(config)
    except (KeyError, OSError, ValueError):
        found = None
    if found:
        return found
    try:
        with h5py.File(path, "r") as h5:
            for name in ("dense_1", "dense"):
                key = f"model_weights/{name}/{name}/bias:0"
                if key in h5:
                    return int(h5[key].shape[0]) // 8
    except OSError:
        pass
    raise UserError(f"{path}: cannot find the pool size in the model file")


def has_phase_in_file(path):
    """True when the model stored in ``path`` has the genic and phase outputs (read from its
    ``model_config``, without TensorFlow)."""
    from helixtune.cli import UserError
    try:
        return len(json.loads(model_config_of_file(path))["config"]["output_layers"]) == 2
    except (KeyError, OSError, ValueError, TypeError):
        raise UserError(f"{path}: cannot read the model's outputs from its model_config") from None


def pool_size(model):
    """Pool size of a built/loaded model: outputs are (B, L/P, P, 4)."""
    return int(model.outputs[0].shape[2])


def coverage_columns(model):
    """Number of BAM columns n a model takes (input channels 4 + 2n); 0 for plain models."""
    channels = int(model.inputs[0].shape[-1])
    return (channels - N_BASE_CHANNELS) // 2


def has_phase(model):
    """True when the model has the genic and phase outputs."""
    return len(model.outputs) == 2


def count_params(model):
    return int(model.count_params())
