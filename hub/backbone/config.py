"""Configuration of the shared Transformer stack."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from hub.errors import ConfigError

Activation = Literal["gelu", "gelu_tanh", "relu", "silu", "swiglu", "geglu"]
NormPosition = Literal["pre", "post"]
Norm = Literal["layernorm", "rmsnorm"]
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "swiglu", "geglu")
NORMS = ("layernorm", "rmsnorm")


@dataclass
class TransformerConfig:
    """Shape and flavour of a Transformer stack; every modality uses the same one.

    ``norm_position="post"`` is BERT's layout (normalise after each residual add);
    ``"pre"`` is GPT-2/ViT's (normalise before each sub-layer, plus a final norm).

    Encoder-decoder fields: ``cross_attention`` gives every block a second attention
    sub-layer whose keys and values come from an encoder's output (the ``memory`` the stack
    is called with: BART's, T5's, Whisper's decoders); ``relative_attention_buckets`` > 0
    adds T5's bucketed relative-position bias to every self-attention logit (one table for
    the whole stack, bidirectional unless ``causal``); ``attention_scale`` replaces
    1/sqrt(head_dim) (T5 uses 1.0: its scaling is folded into the weights);
    ``attention_head_dim`` > 0 decouples the head width from hidden_size / num_heads (T5
    v1.1: 6 heads of 64 on a 512-wide model). ``activation="geglu"`` is the gated GELU
    (tanh approximation) feed-forward of T5 v1.1 / Flan-T5, as ``"swiglu"`` is LLaMA's.
    """

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    activation: Activation = "gelu"
    norm: Norm = "layernorm"
    norm_eps: float = 1e-12
    norm_position: NormPosition = "post"
    qkv_bias: bool = True
    out_bias: bool = True
    mlp_bias: bool = True
    dropout: float = 0.1
    attention_dropout: float = 0.1
    causal: bool = False
    rotary_dim: int = 0  # channels per head rotated by RoPE; 0 = no rotary positions
    rotary_base: float = 10000.0
    gradient_checkpointing: bool = False  # recompute blocks in backward to save memory
    cross_attention: bool = False  # each block also attends to an encoder's memory (decoders)
    relative_attention_buckets: int = 0  # T5 relative-position bias buckets; 0 = none
    relative_attention_max_distance: int = 128  # offsets beyond share the last bucket
    attention_scale: float | None = None  # None: 1 / sqrt(head_dim)
    attention_head_dim: int = 0  # 0: hidden_size / num_heads

    def __post_init__(self) -> None:
        """Check every field's type and range, so a bad config is one ConfigError naming the
        key (never a ZeroDivisionError or a torch RuntimeError from deep inside a layer)."""
        read = ConfigReader(self.__dict__, "backbone config")
        read.int("hidden_size")
        read.int("num_layers", minimum=0)
        read.int("num_heads")
        read.int("intermediate_size")
        read.choice("activation", ACTIVATIONS)
        read.choice("norm", NORMS)
        read.float("norm_eps", above=0.0, maximum=1.0)
        read.choice("norm_position", ("pre", "post"))
        for flag in ("qkv_bias", "out_bias", "mlp_bias", "causal", "gradient_checkpointing", "cross_attention"):
            read.bool(flag)
        read.int("relative_attention_buckets", minimum=0, maximum=4096)
        read.int("relative_attention_max_distance")
        if self.attention_scale is not None:
            read.float("attention_scale", above=0.0)
        read.int("attention_head_dim", minimum=0)
        read.float("dropout", minimum=0.0, below=1.0)
        read.float("attention_dropout", minimum=0.0, below=1.0)
        read.int("rotary_dim", minimum=0)
        read.float("rotary_base", above=0.0)
        if self.relative_attention_buckets and self.relative_attention_buckets < (2 if self.causal else 4):
            raise ConfigError(f"backbone config: relative_attention_buckets ({self.relative_attention_buckets}) "
                              f"must be at least {2 if self.causal else 4} (T5 uses 32), or 0 for none.")
        if not self.attention_head_dim and self.hidden_size % self.num_heads:
            raise ConfigError(f"backbone config: hidden_size ({self.hidden_size}) must be divisible by "
                              f"num_heads ({self.num_heads}); choose num_heads among "
                              f"{_divisors(self.hidden_size)}.")
        if self.rotary_dim and (self.rotary_dim % 2 or self.rotary_dim > self.head_dim):
            raise ConfigError(f"backbone config: rotary_dim ({self.rotary_dim}) must be even and at most "
                              f"the head dimension ({self.head_dim} = hidden_size / num_heads).")

    @property
    def head_dim(self) -> int:
        return self.attention_head_dim or self.hidden_size // self.num_heads

    @property
    def attention_dim(self) -> int:
        """Width of the concatenated heads (hidden_size unless ``attention_head_dim`` says otherwise)."""
        return self.num_heads * self.head_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "TransformerConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"backbone config must be an object (dict) of TransformerConfig fields, "
                              f"got {type(data).__name__} {data!r:.80}.")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            hints = {k: difflib.get_close_matches(str(k), names, n=1) for k in unknown}
            close = "; ".join(f"{k!r}: did you mean {v[0]!r}?" for k, v in hints.items() if v)
            raise ConfigError(f"Unknown backbone config key(s) {sorted(map(str, unknown))}"
                              f"{' (' + close + ')' if close else ''}; known: {sorted(names)}.")
        return cls(**data)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 4096) + 1) if n % d == 0][:12]


#: The largest single size (a width, a count, a vocabulary) any config may state. Past it
#: torch overflows 32-bit index math long before memory would run out; the parameter
#: budget of :func:`hub.modeling.build_module` (HUB_MAX_PARAMETERS) bounds the product.
MAX_SIZE = 2**31 - 1
_REQUIRED: Any = object()


class ConfigReader:
    """Typed, range-checked reads of one model config (a dict from config.json or from
    ``hub.create(config=...)``).

    Each failure is a :class:`ConfigError` that names the key (``backbone.num_heads``), the
    value found and what is allowed, so every architecture validates its config the same way
    and a bad value never reaches torch (where it would be a ``KeyError``, a
    ``ZeroDivisionError`` or a ``RuntimeError`` about negative dimensions).
    """

    def __init__(self, config: Any, where: str, prefix: str = "") -> None:
        if not isinstance(config, Mapping):
            raise ConfigError(f"{where}{' ' + prefix.rstrip('.') if prefix else ''} must be an object (dict), "
                              f"got {type(config).__name__} {config!r:.80}.")
        self.config, self.where, self.prefix = config, where, prefix

    def _fail(self, key: str, allowed: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.where}: {self.prefix + key!r} must be {allowed}, got {value!r:.80}"
                           f"{f' ({type(value).__name__})' if not isinstance(value, (int, float)) else ''}.")

    def _get(self, key: str, default: Any, allowed: str) -> Any:
        if key in self.config:
            return self.config[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self.where} needs {self.prefix + key!r} ({allowed}); it is missing.")
        return default

    def has(self, key: str) -> bool:
        return key in self.config

    def int(self, key: str, default: Any = _REQUIRED, *, minimum: int = 1, maximum: int = MAX_SIZE,
            optional: bool = False) -> Any:
        """An integer in [minimum, maximum] (JSON numbers like 4.0 are refused: sizes are whole)."""
        allowed = (f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum != MAX_SIZE else "")
                   + (" or null" if optional else ""))
        value = self._get(key, default, allowed)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self._fail(key, allowed, value)
        return value

    def float(self, key: str, default: Any = _REQUIRED, *, minimum: float | None = None,
              maximum: float | None = None, above: float | None = None, below: float | None = None) -> float:
        """A finite number within the given bounds (``above``/``below`` exclusive)."""
        parts = [f">= {minimum}" if minimum is not None else "", f"> {above}" if above is not None else "",
                 f"<= {maximum}" if maximum is not None else "", f"< {below}" if below is not None else ""]
        allowed = "a finite number" + (" " + " and ".join(p for p in parts if p) if any(parts) else "")
        value = self._get(key, default, allowed)
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)
                or (above is not None and value <= above) or (below is not None and value >= below)):
            raise self._fail(key, allowed, value)
        return float(value)

    def bool(self, key: str, default: Any = _REQUIRED) -> bool:
        value = self._get(key, default, "true or false")
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def choice(self, key: str, choices: Iterable[Any], default: Any = _REQUIRED) -> Any:
        choices = tuple(choices)
        allowed = "one of " + ", ".join(repr(c) for c in choices)
        value = self._get(key, default, allowed)
        if isinstance(value, bool) or not any(value == c and type(value) is type(c) for c in choices):
            raise self._fail(key, allowed, value)
        return value

    def str(self, key: str, default: Any = _REQUIRED, *, optional: bool = False) -> Any:
        allowed = "a non-empty string" + (" or null" if optional else "")
        value = self._get(key, default, allowed)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise self._fail(key, allowed, value)
        return value

    def str_list(self, key: str, default: Any = _REQUIRED, *, nonempty: bool = True,
                 optional: bool = False, unique: bool = False) -> Any:
        """A list of strings (labels, a vocabulary)."""
        allowed = ("a non-empty list" if nonempty else "a list") + " of strings" + (
            " without repeats" if unique else "") + (" or null" if optional else "")
        value = self._get(key, default, allowed)
        if value is None and optional:
            return None
        if (not isinstance(value, (list, tuple)) or (nonempty and not value)
                or not all(isinstance(v, str) for v in value) or (unique and len(set(value)) != len(value))):
            raise self._fail(key, allowed, value)
        return list(value)

    def labels(self, key: str = "labels", default: Any = _REQUIRED, *, optional: bool = False) -> Any:
        """Class names: a non-empty list of strings (integers pass too, as JSON may hold them)."""
        allowed = "a non-empty list of label names (strings)" + (" or null" if optional else "")
        value = self._get(key, default, allowed)
        if value is None and optional:
            return None
        if (not isinstance(value, (list, tuple)) or not value or len(value) > MAX_SIZE
                or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)):
            raise self._fail(key, allowed, value)
        return list(value)

    def int_list(self, key: str, default: Any = _REQUIRED, *, minimum: int = 1, length: int | None = None,
                 nonempty: bool = True, max_length: int = 4096) -> list[int]:
        """A list of integers >= minimum (``length`` items exactly, when given)."""
        allowed = (f"a list of {length if length is not None else 'one or more'} integers >= {minimum}"
                   if nonempty or length else f"a list of integers >= {minimum}")
        value = self._get(key, default, allowed)
        if (not isinstance(value, (list, tuple)) or (nonempty and not value) or len(value) > max_length
                or (length is not None and len(value) != length)
                or not all(isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= MAX_SIZE
                           for v in value)):
            raise self._fail(key, allowed, value)
        return list(value)

    def size_pair(self, key: str, default: Any = _REQUIRED) -> tuple[int, int]:
        """An image size: one positive integer or a list of two."""
        allowed = "a positive integer or a list of two positive integers"
        value = self._get(key, default, allowed)
        items = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (not isinstance(items, (list, tuple)) or len(items) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE for v in items)):
            raise self._fail(key, allowed, value)
        return int(items[0]), int(items[1])

    def mapping(self, key: str, default: Any = _REQUIRED) -> dict[str, Any]:
        value = self._get(key, default, "an object (dict)")
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object (dict)", value)
        return dict(value)

    def section(self, key: str, default: Any = _REQUIRED) -> "ConfigReader":
        """A reader of the nested object ``key`` (messages name ``key.subkey``)."""
        return ConfigReader(self.mapping(key, default), self.where, f"{self.prefix}{key}.")

    def known(self, keys: Iterable[str]) -> None:
        """Refuse keys outside ``keys`` (a typo such as ``num_layer`` would otherwise be ignored)."""
        keys = set(keys)
        unknown = sorted(str(k) for k in self.config if k not in keys)
        if unknown:
            hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, keys, n=1))
                     else repr(k) for k in unknown]
            raise ConfigError(f"{self.where}: unknown key(s) {', '.join(hints)}"
                              f"{' under ' + repr(self.prefix.rstrip('.')) if self.prefix else ''}; "
                              f"known: {', '.join(sorted(keys))}.")
