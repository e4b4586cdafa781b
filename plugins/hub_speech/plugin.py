"""Registrations of the built-in speech plugin (data only; nothing heavy is imported).

Each TaskSpec is the one place its task's facts live; the default names a model in Hub's
registry.yaml.
"""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec, TaskSpec


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="speech-recognize",
            pipeline="hub_speech.pipelines.recognize:SpeechRecognitionPipeline",
            description="Speech to text: {'text'} per audio (word/char timestamps optional); greedy or "
                        "beam-search CTC decoding, or Whisper (language=, task=, num_beams=); long audio "
                        "chunked with overlap.",
            aliases=("automatic-speech-recognition", "asr"),
            default_model="commands-ctc",
            modality="audio",
            pipeline_tag="automatic-speech-recognition",
        ),
        TaskSpec(
            name="audio-classify",
            pipeline="hub_speech.pipelines.classify:AudioClassificationPipeline",
            description="Classify audio clips (e.g. keyword spotting): top-k {'label', 'score'}.",
            aliases=("audio-classification", "keyword-spotting"),
            default_model="keywords-kws20",
            modality="audio",
            pipeline_tag="audio-classification",
        ),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("speech-ctc", "hub_speech.models.encoder:build_speech_ctc",
                         "Log-mel front end + conv subsampling + shared pre-norm backbone (rotary) + CTC head."),
        ArchitectureSpec("audio-classifier", "hub_speech.models.encoder:build_audio_classifier",
                         "Log-mel front end + conv subsampling + shared backbone + mean-pooled linear classifier."),
        ArchitectureSpec("wav2vec2-ctc", "hub_speech.models.wav2vec2:build_wav2vec2_ctc",
                         "wav2vec 2.0 conv feature encoder + conv positions + shared backbone + CTC head."),
        ArchitectureSpec("whisper", "hub_speech.models.whisper:build_whisper",
                         "Whisper: conv front end + encoder, cross-attending decoder on the shared backbone."),
    ]


@hookimpl
def hub_converters() -> list[ConverterSpec]:
    return [
        ConverterSpec(name="transformers-wav2vec2", source="transformers", model_types=("wav2vec2",),
                      architecture="wav2vec2-ctc", convert="hub_speech.models.wav2vec2:convert_wav2vec2",
                      description="transformers Wav2Vec2ForCTC (base layout and do_stable_layer_norm)."),
        ConverterSpec(name="transformers-whisper", source="transformers", model_types=("whisper",),
                      architecture="whisper", convert="hub_speech.models.whisper:convert_whisper",
                      description="transformers WhisperForConditionalGeneration (speech-recognize decodes it: "
                                  "language / task prompts, suppressed tokens, 30 s chunks)."),
    ]
