"""Registrations of the built-in recommender plugin (data only; nothing heavy is imported).

The TaskSpec is the one place the task's facts live; the default names a model in Hub's
registry.yaml.
"""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ArchitectureSpec, TaskSpec


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="recommend",
            pipeline="hub_recsys.pipelines.recommend:RecommendPipeline",
            description="Recommend items to users: [{'item', 'score'}] per user; similar_items; "
                        "cold start by popularity or the user's recent items.",
            aliases=("recommendation", "recsys"),
            default_model="movielens-sasrec",
            modality="recsys",
            pipeline_tag=None,  # the Hugging Face Hub has no recommendation pipeline tag
        ),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("mf", "hub_recsys.models.recommenders:build_mf",
                         "Biased matrix factorisation for explicit ratings (RMSE)."),
        ArchitectureSpec("bpr", "hub_recsys.models.recommenders:build_bpr",
                         "Matrix factorisation trained with the BPR pairwise loss (implicit feedback)."),
        ArchitectureSpec("ncf", "hub_recsys.models.recommenders:build_ncf",
                         "Neural collaborative filtering (NeuMF: GMF + MLP), implicit feedback."),
        ArchitectureSpec("sasrec", "hub_recsys.models.recommenders:build_sasrec",
                         "SASRec: causal self-attention over item histories on the shared backbone."),
        ArchitectureSpec("bert4rec", "hub_recsys.models.recommenders:build_bert4rec",
                         "BERT4Rec: bidirectional masked-item model on the shared backbone."),
    ]
