"""Registrations of the built-in text plugin (data only; nothing heavy is imported).

Each TaskSpec is the one place its task's facts live (aliases, description, default model,
modality, Hugging Face pipeline tag); the default names a model in Hub's registry.yaml.
"""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec, TaskSpec


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="text-classify",
            pipeline="hub_text.pipelines.classify:TextClassificationPipeline",
            description="Classify texts (e.g. sentiment): {'label', 'score'} per text.",
            aliases=("text-classification", "sentiment-analysis"),
            default_model="sentiment-minilm",
            modality="text",
            pipeline_tag="text-classification",
        ),
        TaskSpec(
            name="text-generate",
            pipeline="hub_text.pipelines.generate:TextGenerationPipeline",
            description="Continue prompts: greedy or sampled decoding, stop strings, streaming.",
            aliases=("text-generation",),
            default_model="fortunes-gpt",
            modality="text",
            pipeline_tag="text-generation",
        ),
        TaskSpec(
            name="fill-mask",
            pipeline="hub_text.pipelines.fill_mask:FillMaskPipeline",
            description="Predict the tokens hidden behind [MASK]: top-k tokens with scores and filled text.",
            default_model="fortunes-mlm",
            modality="text",
            pipeline_tag="fill-mask",
        ),
        TaskSpec(
            name="text-embed",
            pipeline="hub_text.pipelines.embed:TextEmbeddingPipeline",
            description="Sentence embeddings (mean/CLS/max pooling, optional L2 normalisation).",
            aliases=("feature-extraction", "sentence-similarity"),
            default_model="all-minilm-l6-v2",
            modality="text",
            pipeline_tag="feature-extraction",
        ),
        TaskSpec(
            name="token-classify",
            pipeline="hub_text.pipelines.token_classify:TokenClassificationPipeline",
            description="Tag tokens (NER): entities with label, score and character span per text.",
            aliases=("token-classification", "ner"),
            default_model="bert-base-ner",
            modality="text",
            pipeline_tag="token-classification",
        ),
        TaskSpec(
            name="summarize",
            pipeline="hub_text.pipelines.summarize:SummarizationPipeline",
            description="Condense texts with an encoder-decoder (BART, T5): {'summary_text'} per text; greedy "
                        "or beam search.",
            aliases=("summarization",),
            default_model="bart-large-cnn",
            modality="text",
            pipeline_tag="summarization",
        ),
        TaskSpec(
            name="translate",
            pipeline="hub_text.pipelines.translate:TranslationPipeline",
            description="Translate texts with an encoder-decoder (Marian opus-mt, T5): {'translation_text'} per "
                        "text; src_lang/tgt_lang for multilingual models.",
            aliases=("translation",),
            alias_patterns=(r"translation_(?P<src_lang>[a-z]{2,3})_to_(?P<tgt_lang>[a-z]{2,3})",),
            default_model="opus-mt-en-de",
            modality="text",
            pipeline_tag="translation",
        ),
        TaskSpec(
            name="text2text-generate",
            pipeline="hub_text.pipelines.text2text:Text2TextGenerationPipeline",
            description="Rewrite texts with an encoder-decoder (T5, BART): {'generated_text'} per text; greedy or "
                        "beam search.",
            aliases=("text2text-generation",),
            default_model="t5-small",
            modality="text",
            pipeline_tag="text2text-generation",
        ),
        TaskSpec(
            name="zero-shot-classify",
            pipeline="hub_text.pipelines.zero_shot:ZeroShotClassificationPipeline",
            description="Score texts against labels given at call time with an NLI model: "
                        "{'sequence', 'labels', 'scores'} per text.",
            aliases=("zero-shot-classification",),
            default_model="distilbert-mnli",
            modality="text",
            pipeline_tag="zero-shot-classification",
        ),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("bert", "hub_text.models.bert:build_encoder",
                         "BERT-family encoder (post-norm) on the shared backbone."),
        ArchitectureSpec("bert-classifier", "hub_text.models.bert:build_classifier",
                         "BERT-family encoder + pooler + linear classification head."),
        ArchitectureSpec("bert-token-classifier", "hub_text.models.bert:build_token_classifier",
                         "BERT-family encoder + per-token classification head (tagging)."),
        ArchitectureSpec("bert-mlm", "hub_text.models.bert:build_masked_lm",
                         "BERT-family encoder + masked-language-model head tied to the embeddings."),
        ArchitectureSpec("causal-lm", "hub_text.models.gpt:build_causal_lm",
                         "GPT-style decoder (pre-norm, causal) with a tied LM head and a KV cache."),
        ArchitectureSpec("seq2seq-lm", "hub_text.models.seq2seq:build_seq2seq_lm",
                         "Encoder-decoder LM (BART, mBART, Marian, T5): encoder, cross-attending decoder, "
                         "tied LM head, KV cache."),
    ]


@hookimpl
def hub_converters() -> list[ConverterSpec]:
    return [
        ConverterSpec(name="transformers-bert-family", source="transformers",
                      model_types=("bert", "roberta", "distilbert"), architecture="bert",
                      convert="hub_text.models.convert:convert",
                      description="transformers BERT, RoBERTa and DistilBERT: base models, sequence "
                                  "and token classification, masked LM."),
        ConverterSpec(name="transformers-gpt2", source="transformers", model_types=("gpt2",),
                      architecture="causal-lm", convert="hub_text.models.gpt:convert_gpt2",
                      description="transformers GPT2Model / GPT2LMHeadModel."),
        ConverterSpec(name="transformers-llama", source="transformers", model_types=("llama",),
                      architecture="causal-lm", convert="hub_text.models.gpt:convert_llama",
                      description="transformers LlamaForCausalLM (RMSNorm, SwiGLU, rotary positions)."),
        ConverterSpec(name="transformers-bart-family", source="transformers", model_types=("bart", "mbart", "marian"),
                      architecture="seq2seq-lm", convert="hub_text.models.convert_seq2seq:convert_bart",
                      description="transformers BartForConditionalGeneration, MBartForConditionalGeneration, "
                                  "MarianMTModel."),
        ConverterSpec(name="transformers-t5", source="transformers", model_types=("t5",),
                      architecture="seq2seq-lm", convert="hub_text.models.convert_seq2seq:convert_t5",
                      description="transformers T5ForConditionalGeneration (T5 v1.0, v1.1, Flan-T5)."),
    ]
