"""Convolution layers: Conv1D, Conv2D, Conv3D, on torch's `F.conv*d` kernels.

Inputs are channels-last at the surface (`(batch, *spatial, channels)`); inside, a permuted view
makes them channels-first for torch (for 2D and 3D that view is already in torch's
`channels_last` memory format, so no copy is made). Kernels are stored in torch's layout
`(filters, in_channels // groups, *kernel_size)` and converted at the boundary, so
`get_weights()` returns Keras's `(*kernel_size, in_channels // groups, filters)`. A user's
subclass that overrides `call` or Keras's `convolution_op` gets its kernel in Keras's layout
(and the computation through `convolution_op`, as in Keras).
"""
import torch.nn.functional as F

from plexus import activations
from plexus.layers import conv_utils as cu
from plexus.layers.core import reject_lora, resolve_weight_args, weight_args_config
from plexus.layers.layer import Layer

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _single(padding):
    return padding[0] if isinstance(padding, (tuple, list)) else padding


class BaseConv(Layer):
    """What every convolution shares: window arguments, activation, bias, input checks.

    Subclasses set `rank`, create their kernels in `_build_kernels(in_channels)`, compute in
    `_convolve(x, padding)` on channels-first tensors and give the output's channel count in
    `_out_channels(in_channels)`.
    """

    rank = None
    _allow_causal = False

    def __init__(self, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, bias_initializer="zeros",
                 bias_regularizer=None, activity_regularizer=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.kernel_size = cu.normalize_tuple(kernel_size, self.rank, "kernel_size", cls)
        self.strides = cu.normalize_tuple(strides, self.rank, "strides", cls)
        self.dilation_rate = cu.normalize_tuple(dilation_rate, self.rank, "dilation_rate", cls)
        self.padding = cu.normalize_padding(padding, cls, allow_causal=self._allow_causal)
        self.data_format = cu.normalize_data_format(data_format, cls)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{cls}: strides > 1 cannot be combined with dilation_rate > 1; received "
                f"strides={self.strides}, dilation_rate={self.dilation_rate}. Use one or the other."
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        resolve_weight_args(self, bias_initializer=bias_initializer,
                            bias_regularizer=bias_regularizer,
                            activity_regularizer=activity_regularizer,
                            bias_constraint=bias_constraint)

    # ------------------------------------------------------------------ shapes
    def _channels(self, input_shape):
        cu.check_rank(self, input_shape, self.rank)
        axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) needs the channel dimension of its "
                f"input to be known, but received an input of shape {tuple(input_shape)}."
            )
        return channels

    def _spatial(self, input_shape):
        if self.data_format == "channels_last":
            return tuple(input_shape[1:-1])
        return tuple(input_shape[2:])

    def _out_spatial(self, spatial):
        return tuple(cu.conv_output_length(n, k, s, self.padding, d) for n, k, s, d in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def compute_output_shape(self, input_shape):
        channels = self._channels(input_shape)
        self._check_channels(channels, input_shape)
        spatial = self._spatial(input_shape)
        out = self._out_spatial(spatial)
        if any(o is not None and o <= 0 for o in out):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) received an input of shape "
                f"{tuple(input_shape)} whose spatial size {spatial} is too small for "
                f"kernel_size={self.kernel_size} with dilation_rate={self.dilation_rate} and "
                f"padding={self.padding!r}. Use a larger input, a smaller kernel, or "
                "padding='same'."
            )
        filters = self._out_channels(channels)
        if self.data_format == "channels_last":
            return (input_shape[0],) + out + (filters,)
        return (input_shape[0], filters) + out

    def _check_channels(self, channels, input_shape):
        if self.built and channels != self._in_channels:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) was built for inputs with "
                f"{self._in_channels} channels, but received an input of shape "
                f"{tuple(input_shape)}."
            )

    # ------------------------------------------------------------------ weights
    def build(self, input_shape):
        channels = self._channels(input_shape)
        self._in_channels = channels
        self.compute_output_shape(input_shape)
        self._build_kernels(channels)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self._out_channels(channels),),
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        self.built = True

    def _torch_kernel(self, shape, initializer, regularizer, constraint, name):
        """Adds a kernel given in Keras layout `shape`, stored in torch's conv layout."""
        param = self.add_weight(shape=shape, initializer=initializer, regularizer=regularizer,
                                constraint=constraint, name=name,
                                layout=(cu.keras_kernel_to_torch(self.rank),
                                        cu.torch_kernel_to_keras(self.rank)))
        fmt = cu.channels_last_format(param.ndim)
        if fmt is not None and self.data_format == "channels_last":
            param.data = param.data.contiguous(memory_format=fmt)
        return param

    # ------------------------------------------------------------------ compute
    def _padded(self, x):
        """Channels-first `x` and the padding the torch kernel should add itself."""
        if self.padding == "causal":
            left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
            return F.pad(x, [left, 0]), 0
        if self.padding == "same":
            return cu.pad_same(x, self.kernel_size, self.strides, self.dilation_rate)
        return x, 0

    def call(self, inputs):
        channels_last = self.data_format == "channels_last"
        dtype = getattr(self, self._weight_table[0].attr).dtype
        if inputs.dtype != dtype:  # integer data, or float64 tensors
            inputs = inputs.to(dtype)
        x = cu.to_channels_first(inputs) if channels_last else inputs
        x, padding = self._padded(x)
        try:
            y = self._convolve(x, padding)
        except RuntimeError as e:
            self.compute_output_shape(tuple(inputs.shape))  # a clear ValueError if too small
            raise e
        if channels_last:
            y = cu.to_channels_last(y)
        return self.activation(y)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                **weight_args_config(self, "bias_initializer", "bias_regularizer",
                                     "activity_regularizer", "bias_constraint")}


class Conv(BaseConv):
    """N-D convolution: `activation(conv(inputs, kernel) + bias)`; base of Conv1D/2D/3D.

    Args:
        filters: number of output channels.
        kernel_size: an int or a tuple of `rank` ints, the window size.
        strides: an int or a tuple, the step of the window (default 1).
        padding: 'valid' (no padding), 'same' (output size `ceil(input / stride)`; when the
            padding is odd the extra row goes at the end) or, for Conv1D, 'causal'.
        data_format: 'channels_last' (default, `(batch, *spatial, channels)`) or
            'channels_first' (`(batch, channels, *spatial)`).
        dilation_rate: spacing between kernel taps (an int or a tuple).
        groups: split input channels into this many groups, each convolved with its own
            `filters // groups` filters.
        activation: activation name or function; none by default.
        use_bias: whether to add a bias per filter.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: as for `Dense`.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         bias_constraint=bias_constraint, **kwargs)
        cls = type(self).__name__
        reject_lora(cls, lora_rank)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"{cls}: `filters` must be a positive integer; received {filters!r}.")
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{cls}: `groups` must be a positive integer; received {groups!r}.")
        if filters % groups:
            raise ValueError(
                f"{cls}: `filters` ({filters}) must be divisible by `groups` ({groups}).")
        self.filters, self.groups = filters, groups
        resolve_weight_args(self, kernel_initializer=kernel_initializer,
                            kernel_regularizer=kernel_regularizer,
                            kernel_constraint=kernel_constraint)

    def _check_channels(self, channels, input_shape):
        if channels % self.groups:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}): the input's {channels} channels "
                f"cannot be split into groups={self.groups} (input shape {tuple(input_shape)}). "
                "Use a number of groups that divides the channel count."
            )
        super()._check_channels(channels, input_shape)

    def _out_channels(self, in_channels):
        return self.filters

    def _user_computes(self):
        """Whether a user's subclass computes with `self.kernel` itself (it overrides `call` or
        Keras's `convolution_op`): the kernel is then kept in Keras's layout
        `(*kernel_size, in, filters)`, as that code expects, and plexus's own `call` (reached
        directly, or through the subclass's `super().call(...)`) computes as Keras's does."""
        cls = type(self)
        return any(not getattr(cls, name).__module__.startswith("plexus.")
                   for name in ("call", "convolution_op"))

    def call(self, inputs):
        if self.__dict__.get("_keras_layout"):
            return self._keras_call(inputs)
        return super().call(inputs)

    def convolution_op(self, inputs, kernel):
        """The convolution of `inputs` by `kernel` (Keras layout), without bias or activation:
        Keras's hook, which a subclass may override to transform the kernel."""
        from plexus import ops
        return ops.conv(inputs, kernel, strides=list(self.strides), padding=self.padding,
                        dilation_rate=self.dilation_rate, data_format=self.data_format)

    def _keras_call(self, inputs):
        """Keras's `Conv.call` on the Keras-layout kernel (see `_user_computes`): causal
        padding as Keras's Conv1D applies it, then `convolution_op` (a subclass's hook)."""
        if self.padding == "causal":  # (Conv1D): the start padded, then a 'valid' convolution
            from plexus import ops
            left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
            axis = 1 if self.data_format == "channels_last" else 2
            pads = [[0, 0]] * 3
            pads[axis] = [left, 0]
            inputs = ops.pad(inputs, pads)
            outputs = ops.conv(inputs, self.kernel, strides=list(self.strides),
                               padding="valid", dilation_rate=self.dilation_rate,
                               data_format=self.data_format)
        else:
            outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            shape = ((1,) * (self.rank + 1) + (self.filters,)
                     if self.data_format == "channels_last" else
                     (1, self.filters) + (1,) * self.rank)
            outputs = outputs + self.bias.reshape(shape)
        return self.activation(outputs)

    def _build_kernels(self, in_channels):
        shape = self.kernel_size + (in_channels // self.groups, self.filters)
        if self._user_computes():
            self.kernel = self.add_weight(shape=shape, initializer=self.kernel_initializer,
                                          regularizer=self.kernel_regularizer,
                                          constraint=self.kernel_constraint, name="kernel")
            self.__dict__["_keras_layout"] = True
            return
        self.kernel = self._torch_kernel(shape, self.kernel_initializer, self.kernel_regularizer,
                                         self.kernel_constraint, "kernel")
        if self._as_2d():
            # (filters, in, width) stored in (filters, width, in) order: as a 2-D kernel of
            # height 1 it is then in channels-last format, like the data
            k = self.kernel
            k.data = k.data.permute(0, 2, 1).contiguous().permute(0, 2, 1)

    def _as_2d(self):
        return self.rank == 1 and self.data_format == "channels_last"

    def _convolve(self, x, padding):
        if self._as_2d():
            # a 1-D convolution of channels-last data as a 2-D one of height 1: oneDNN takes the
            # data and the kernel as they are, without reordering them (about 10% faster
            # forward and backward than conv1d on the same views)
            pad = padding if isinstance(padding, str) else (0, _single(padding))
            y = F.conv2d(x.unsqueeze(2), self.kernel.unsqueeze(2), self.bias,
                         (1, self.strides[0]), pad, (1, self.dilation_rate[0]), self.groups)
            return y.squeeze(2)
        return _CONV_FN[self.rank](x, self.kernel, self.bias, self.strides, padding,
                                   self.dilation_rate, self.groups)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "groups": self.groups,
                       **weight_args_config(self, "kernel_initializer", "kernel_regularizer",
                                            "kernel_constraint")})
        return config


class Conv1D(Conv):
    """1D convolution over sequences (temporal convolution).

    Input shape: `(batch, steps, channels)`. Output shape: `(batch, new_steps, filters)`.
    `padding='causal'` pads only the start, so output step `t` sees inputs up to `t`.

    Example:
        >>> Conv1D(16, 3, padding="same")(Input(shape=(None, 8))).shape
        (None, None, 16)
    """

    rank = 1
    _allow_causal = True


class Conv2D(Conv):
    """2D convolution over images.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, new_height, new_width, filters)`; the kernel is `(kh, kw, channels // groups,
    filters)` in `get_weights()`.

    Example:
        >>> Conv2D(32, (3, 3), activation="relu")(Input(shape=(150, 150, 3))).shape
        (None, 148, 148, 32)
    """

    rank = 2


class Conv3D(Conv):
    """3D convolution over volumes (or video).

    Input shape: `(batch, d1, d2, d3, channels)`. Output shape:
    `(batch, new_d1, new_d2, new_d3, filters)`.
    """

    rank = 3


Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
