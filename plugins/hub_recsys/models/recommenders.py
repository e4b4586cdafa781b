"""Recommender models: biased MF, BPR-MF, NeuMF, and SASRec / BERT4Rec on the shared backbone.

Every model follows the Trainer contract (``model(**batch)`` -> ``{"loss", "logits"}``) and
offers ``scores(batch)``: (B, num_items) scores over all items, used for recommending
and for evaluation. Items are indices 0..num_items-1; the sequential models shift them by
one inside (token 0 = padding, token num_items + 1 = [MASK]).

Evaluation batches (Trainer) carry ``labels`` (B,) target items and ``exclude`` (B, V)
booleans (the user's seen items): logits are the full-item scores with those at -inf.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import (
    MaskedLMHead,
    TokenEmbedding,
    Transformer,
    TransformerConfig,
    init_weights,
)
from hub.backbone.config import ConfigReader
from hub.errors import ConfigError

NEG_INF = float("-inf")


def _masked(logits: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    return logits if exclude is None else logits.masked_fill(exclude.bool(), NEG_INF)


def _ranking_output(logits: torch.Tensor, labels: torch.Tensor | None, exclude: torch.Tensor | None) -> dict:
    logits = _masked(logits, exclude)
    out: dict[str, torch.Tensor] = {"logits": logits}
    if labels is not None:  # full softmax over the unexcluded items (the target never is)
        out["loss"] = F.cross_entropy(logits.float(), labels.long())
    return out


def _check(config: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if not isinstance(config.get(k), int) or config[k] < 1]
    if missing:
        raise ConfigError(f"recommender config needs positive integers {missing}; got {config!r:.200}.")


_FACTOR_KEYS = ("factors", "reg", "init_std", "num_users", "num_items")
_SEQUENTIAL_KEYS = ("max_len", "hidden_size", "num_layers", "num_heads", "intermediate_size", "dropout",
                    "train_negatives", "mask_prob", "init_std", "num_items")
#: the keys each recommender's config takes (``hub.create`` refuses others)
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "mf": (*_FACTOR_KEYS, "global_mean", "rating_range"), "bpr": _FACTOR_KEYS,
    "ncf": (*_FACTOR_KEYS, "mlp_layers", "dropout"), "sasrec": _SEQUENTIAL_KEYS, "bert4rec": _SEQUENTIAL_KEYS,
}


def check_config(architecture: str, config: Any, *, sized: bool = True, strict: bool = False) -> None:
    """Validate a recommender config (one ConfigError naming the key and what it takes).

    ``sized``: num_items (and num_users for mf/bpr/ncf) must be there, as when a model is
    built; ``hub.create`` configs leave them to the data. ``strict`` refuses unknown keys."""
    read = ConfigReader(config, f"{architecture} config")
    if strict:
        read.known(CONFIG_KEYS[architecture])
    needs_users = architecture in ("mf", "bpr", "ncf")
    if sized or read.has("num_items"):
        read.int("num_items")
    if needs_users and (sized or read.has("num_users")):
        read.int("num_users")
    read.float("init_std", 0.1, above=0.0, maximum=10.0)
    read.float("dropout", 0.0, minimum=0.0, below=1.0)
    if needs_users:
        read.int("factors", 64, maximum=1 << 16)
        read.float("reg", 0.0, minimum=0.0)
    if architecture == "mf":
        read.float("global_mean", 0.0)
        if config.get("rating_range") is not None:
            value = config["rating_range"]
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                    or value[0] > value[1]):
                raise ConfigError(f"mf config: 'rating_range' must be [low, high] numbers, got {value!r:.60}.")
    if architecture == "ncf":
        layers = read.int_list("mlp_layers", [64, 32, 16], max_length=64)
        if layers[0] < 2:
            raise ConfigError(f"ncf config: mlp_layers[0] must be at least 2 (half of it embeds users, half items), "
                              f"got {layers[0]}.")
    if architecture in ("sasrec", "bert4rec"):
        read.int("max_len", 50, maximum=1 << 20)
        read.int("train_negatives", 0, minimum=0)
        read.float("mask_prob", 0.2, above=0.0, below=1.0)
        for key in ("hidden_size", "num_heads", "intermediate_size"):
            read.int(key, 64)
        read.int("num_layers", 2, minimum=0)
        backbone_config(config, causal=architecture == "sasrec",
                        norm_position="pre" if architecture == "sasrec" else "post")  # heads divide hidden


class RecModel(nn.Module):
    """Base: what the pipeline asks of every recommender."""

    kind = "implicit"  # "explicit" (ratings), "implicit" (user factors), "sequential" (histories)
    architecture = ""

    def __init__(self, config: dict[str, Any]) -> None:
        if self.architecture:
            check_config(self.architecture, config)
        super().__init__()
        self.config = dict(config)
        self.num_items = int(config["num_items"])

    def item_vectors(self) -> torch.Tensor:
        """(V, d) item representations for similar-item search (cosine)."""
        raise NotImplementedError


# -- factorisation models ------------------------------------------------------------------
class BiasedMF(RecModel):
    """Explicit ratings: r(u, i) = mu + b_u + b_i + p_u . q_i, squared error + L2 on the
    factors and biases a batch touches (as SGD-trained SVD regularises)."""

    kind = "explicit"
    architecture = "mf"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        _check(config, "num_users", "num_items", "factors")
        users, items, f = config["num_users"], config["num_items"], config["factors"]
        self.user_factors, self.item_factors = nn.Embedding(users, f), nn.Embedding(items, f)
        self.user_bias, self.item_bias = nn.Embedding(users, 1), nn.Embedding(items, 1)
        self.mean = nn.Parameter(torch.tensor(float(config.get("global_mean", 0.0))))
        std = float(config.get("init_std", 0.1))
        for emb in (self.user_factors, self.item_factors):
            nn.init.normal_(emb.weight, std=std)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        p, q = self.user_factors(users), self.item_factors(items)
        return self.mean + self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0] + (p * q).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                exclude: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if items is None:  # ranking evaluation
            return _ranking_output(self.scores({"users": users}), labels, exclude)
        pred = self.predict(users, items)
        out = {"logits": pred}
        if labels is not None:
            reg = float(self.config.get("reg", 0.02))
            penalty = (self.user_factors(users).pow(2).sum(-1) + self.item_factors(items).pow(2).sum(-1)
                       + self.user_bias(users)[:, 0] ** 2 + self.item_bias(items)[:, 0] ** 2)
            out["loss"] = F.mse_loss(pred, labels.float()) + reg * penalty.mean()
        return out

    def scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users = batch["users"]
        bias = self.mean + self.user_bias(users)  # (B, 1)
        return torch.addmm(self.item_bias.weight[:, 0], self.user_factors(users), self.item_factors.weight.T).add_(bias)

    def item_vectors(self) -> torch.Tensor:
        return self.item_factors.weight


class BPRMF(RecModel):
    """Implicit feedback: s(u, i) = p_u . q_i + b_i, trained with the BPR pairwise loss
    -log sigmoid(s(u, i+) - s(u, i-)) on sampled negatives, plus L2 on the touched rows."""

    architecture = "bpr"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        _check(config, "num_users", "num_items", "factors")
        users, items, f = config["num_users"], config["num_items"], config["factors"]
        self.user_factors, self.item_factors = nn.Embedding(users, f), nn.Embedding(items, f)
        self.item_bias = nn.Embedding(items, 1)
        for emb in (self.user_factors, self.item_factors):
            nn.init.normal_(emb.weight, std=float(config.get("init_std", 0.1)))
        nn.init.zeros_(self.item_bias.weight)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users (B,), items (B, n) -> (B, n)."""
        return (self.user_factors(users)[:, None] * self.item_factors(items)).sum(-1) + self.item_bias(items)[..., 0]

    def forward(self, users: torch.Tensor, items: torch.Tensor | None = None, negatives: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, exclude: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if negatives is None:
            return _ranking_output(self.scores({"users": users}), labels, exclude)
        pos = self.pair_scores(users, items[:, None])  # (B, 1)
        neg = self.pair_scores(users, negatives)  # (B, n)
        reg = float(self.config.get("reg", 1e-4))
        penalty = (self.user_factors(users).pow(2).sum(-1) + self.item_factors(items).pow(2).sum(-1)
                   + self.item_factors(negatives).pow(2).sum(-1).mean(-1))
        loss = -F.logsigmoid(pos - neg).mean() + reg * penalty.mean()
        return {"loss": loss, "logits": pos[:, 0]}

    def scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # one fused multiply-add: (B, f) @ (f, V) + (V,)
        return torch.addmm(self.item_bias.weight[:, 0], self.user_factors(batch["users"]), self.item_factors.weight.T)

    def item_vectors(self) -> torch.Tensor:
        return self.item_factors.weight


class NeuMF(RecModel):
    """Neural collaborative filtering (He et al., 2017): a GMF branch (element-wise product)
    and an MLP branch over concatenated embeddings, fused by a linear layer; binary
    cross-entropy on observed items vs sampled negatives."""

    architecture = "ncf"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        _check(config, "num_users", "num_items", "factors")
        users, items, f = config["num_users"], config["num_items"], config["factors"]
        layers = list(config.get("mlp_layers", [64, 32, 16]))
        self.gmf_user, self.gmf_item = nn.Embedding(users, f), nn.Embedding(items, f)
        self.mlp_user, self.mlp_item = nn.Embedding(users, layers[0] // 2), nn.Embedding(items, layers[0] // 2)
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
        self.out = nn.Linear(f + layers[-1], 1)
        self.dropout = nn.Dropout(float(config.get("dropout", 0.0)))
        init_weights(self, std=0.01)

    def _mlp(self, first: torch.Tensor) -> torch.Tensor:
        x = first
        for index, layer in enumerate(self.mlp):
            x = layer(self.dropout(torch.relu(x)) if index else x)
        return torch.relu(x)

    def pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users (B,), items (B, n) -> (B, n) logits."""
        gmf = self.gmf_user(users)[:, None] * self.gmf_item(items)  # (B, n, f)
        mlp_in = torch.cat([self.mlp_user(users)[:, None].expand(-1, items.shape[1], -1), self.mlp_item(items)], -1)
        return self.out(torch.cat([gmf, self._mlp(mlp_in)], -1))[..., 0]

    def forward(self, users: torch.Tensor, items: torch.Tensor | None = None, negatives: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, exclude: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if negatives is None:
            return _ranking_output(self.scores({"users": users}), labels, exclude)
        logits = self.pair_scores(users, torch.cat([items[:, None], negatives], 1))  # (B, 1 + n)
        target = torch.zeros_like(logits)
        target[:, 0] = 1.0
        return {"loss": F.binary_cross_entropy_with_logits(logits, target), "logits": logits[:, 0]}

    def scores(self, batch: dict[str, torch.Tensor], chunk: int = 16) -> torch.Tensor:
        users = batch["users"]
        items = torch.arange(self.num_items, device=users.device)
        # the MLP's first layer is linear in [user; item]: split it so no (B, V, 2d) input is built
        first = self.mlp[0]
        half = self.mlp_user.embedding_dim
        item_part = self.mlp_item(items) @ first.weight[:, half:].T  # (V, h)
        rows = []
        for start in range(0, users.shape[0], chunk):
            u = users[start:start + chunk]
            user_part = self.mlp_user(u) @ first.weight[:, :half].T + first.bias  # (b, h)
            x = user_part[:, None] + item_part[None]  # (b, V, h)
            for layer in self.mlp[1:]:
                x = layer(self.dropout(torch.relu(x)))
            gmf = self.gmf_user(u)[:, None] * self.gmf_item.weight[None]  # (b, V, f)
            rows.append(self.out(torch.cat([gmf, torch.relu(x)], -1))[..., 0])
        return torch.cat(rows)

    def item_vectors(self) -> torch.Tensor:
        return torch.cat([self.gmf_item.weight, self.mlp_item.weight], -1)


# -- sequential models on the shared backbone ------------------------------------------------
def backbone_config(config: dict[str, Any], *, causal: bool, norm_position: str) -> TransformerConfig:
    hidden = int(config.get("hidden_size", 64))
    return TransformerConfig(
        hidden_size=hidden, num_layers=int(config.get("num_layers", 2)), num_heads=int(config.get("num_heads", 2)),
        intermediate_size=int(config.get("intermediate_size", 4 * hidden)), activation="gelu",
        norm_eps=1e-8 if norm_position == "pre" else 1e-12, norm_position=norm_position,  # type: ignore[arg-type]
        dropout=float(config.get("dropout", 0.2)), attention_dropout=float(config.get("dropout", 0.2)),
        causal=causal)


class SequentialRecommender(RecModel):
    """Item-id front end (learned positions, 0 = padding) + the shared Transformer.

    Sequences are left-padded to ``max_len`` so that the most recent item always sits at
    the last position (positions measure recency, as in SASRec)."""

    kind = "sequential"
    causal = True
    norm_position = "pre"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        _check(config, "num_items", "max_len")
        self.max_len = int(config["max_len"])
        bb = backbone_config(config, causal=self.causal, norm_position=self.norm_position)
        self.embed = TokenEmbedding(self.num_items + 2, bb.hidden_size, max_positions=self.max_len,
                                    position="learned", norm=self.norm_position == "post", dropout=bb.dropout,
                                    pad_token_id=0)
        self.encoder = Transformer(bb)
        init_weights(self, std=float(config.get("init_std", 0.02)))
        with torch.no_grad():
            self.embed.tokens.weight[0].zero_()

    @property
    def mask_token(self) -> int:
        return self.num_items + 1

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) tokens -> (B, T, C); T <= max_len, right-aligned to the last position."""
        length = input_ids.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len, device=input_ids.device)[None]
        x = self.embed(input_ids, position_ids=positions.expand_as(input_ids))
        return self.encoder(x, input_ids != 0)

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., V): dot products with the (tied) item embeddings."""
        return hidden @ self.embed.tokens.weight[1:self.num_items + 1].T

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                exclude: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if labels is not None and labels.ndim == 2:  # training: per-position targets, -100 elsewhere
            hidden = self.hidden(input_ids)
            picked = labels != -100
            targets = labels[picked]
            negatives = int(self.config.get("train_negatives", 0))
            if negatives <= 0 or negatives >= self.num_items:
                logits = self.item_logits(hidden[picked])  # (N, V): only the positions with a target
                return {"loss": F.cross_entropy(logits.float(), targets), "logits": logits}
            return self._sampled_softmax(hidden[picked], targets, negatives)
        return _ranking_output(self.scores({"input_ids": input_ids}), labels, exclude)

    def _sampled_softmax(self, hidden: torch.Tensor, targets: torch.Tensor, negatives: int) -> dict:
        """Softmax over the target and ``negatives`` items drawn uniformly once per batch (shared
        by every position; a draw equal to a position's target is masked out): about V/n times
        cheaper than the full softmax for large catalogues."""
        sampled = torch.randint(self.num_items, (negatives,), device=hidden.device)
        query = self.project(hidden)  # (N, C)
        table = self.embed.tokens.weight
        bias = self.item_bias()
        positive = (query * table[targets + 1]).sum(-1, keepdim=True) + bias[targets][:, None]  # (N, 1)
        negative = query @ table[sampled + 1].T + bias[sampled][None]  # (N, n)
        negative = negative.masked_fill(sampled[None] == targets[:, None], NEG_INF)
        scores = torch.cat([positive, negative], 1)
        zeros = torch.zeros(len(targets), dtype=torch.long, device=hidden.device)
        return {"loss": F.cross_entropy(scores.float(), zeros), "logits": scores}

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The query vector whose dot product with an item embedding (+ bias) is its score."""
        return hidden

    def item_bias(self) -> torch.Tensor:
        return self.embed.tokens.weight.new_zeros(self.num_items)

    def scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Next-item scores after each (left-padded) history."""
        return self.item_logits(self.hidden(batch["input_ids"])[:, -1])

    def item_vectors(self) -> torch.Tensor:
        return self.embed.tokens.weight[1:self.num_items + 1]


class SASRec(SequentialRecommender):
    """SASRec (Kang & McAuley, 2018): causal self-attention over the history; every
    position predicts the next item. Trained with full softmax cross-entropy over all items
    (stronger than the paper's one-negative BCE; Klenitskiy & Vasilev, 2023)."""

    architecture = "sasrec"


class BERT4Rec(SequentialRecommender):
    """BERT4Rec (Sun et al., 2019): bidirectional attention, trained by the cloze task
    (masked items predicted from both sides); recommends by appending [MASK] to the
    history. Its head is BERT's masked-LM head tied to the item embeddings."""

    architecture = "bert4rec"
    causal = False
    norm_position = "post"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        hidden = self.embed.tokens.embedding_dim
        self.head = MaskedLMHead(hidden, self.num_items + 2, activation="gelu", norm_eps=1e-12)
        self.head.tie_to(self.embed.tokens)
        init_weights(self.head, std=float(config.get("init_std", 0.02)))

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(hidden)[..., 1:self.num_items + 1]

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head.norm(self.head.act(self.head.dense(hidden)))

    def item_bias(self) -> torch.Tensor:
        return self.head.bias[1:self.num_items + 1]

    def scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["input_ids"]
        masked = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], self.mask_token)], 1) \
            if ids.shape[1] >= self.max_len else torch.cat([ids, torch.full_like(ids[:, :1], self.mask_token)], 1)
        return self.item_logits(self.hidden(masked)[:, -1])


ARCHITECTURES: dict[str, type[RecModel]] = {"mf": BiasedMF, "bpr": BPRMF, "ncf": NeuMF, "sasrec": SASRec,
                                            "bert4rec": BERT4Rec}


def build_mf(config: dict[str, Any]) -> BiasedMF:
    return BiasedMF(config)


def build_bpr(config: dict[str, Any]) -> BPRMF:
    return BPRMF(config)


def build_ncf(config: dict[str, Any]) -> NeuMF:
    return NeuMF(config)


def build_sasrec(config: dict[str, Any]) -> SASRec:
    return SASRec(config)


def build_bert4rec(config: dict[str, Any]) -> BERT4Rec:
    return BERT4Rec(config)


def check_scratch_config(architecture: Any, config: dict[str, Any],
                         defaults: dict[str, dict[str, Any]] | None = None) -> None:
    """``hub.create("recommend", config=...)``: a known architecture, known keys of the right
    types (``config`` over ``defaults[architecture]``), and sizes within HUB_MAX_PARAMETERS /
    HUB_MAX_MODULES (checked by a meta build with one user and one item; the data adds its
    users and items at fine-tuning)."""
    from hub.modeling import check_scratch_size

    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ConfigError(f"Unknown recommender architecture {architecture!r:.60}; known: {sorted(ARCHITECTURES)}.")
    config = {**(defaults or {}).get(architecture, {}), **config}
    check_config(architecture, config, sized=False, strict=True)
    check_scratch_size(lambda: ARCHITECTURES[architecture]({**config, "num_items": 1, "num_users": 1}),
                       architecture, config)


def build_sized(architecture: str, config: dict[str, Any]) -> RecModel:
    """The model for ``config`` sized to the data, built for real only once a meta build shows
    it within HUB_MAX_PARAMETERS / HUB_MAX_MODULES."""
    from hub.modeling import check_scratch_size

    check_scratch_size(lambda: ARCHITECTURES[architecture](config), architecture, config)
    return ARCHITECTURES[architecture](config)
