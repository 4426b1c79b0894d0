"""Offline speech for the IVR: cached TTS (pyttsx3 / espeak-ng) and grammar-constrained,
streaming ASR (pocketsphinx), behind the small protocols in ``interfaces``."""

from callcenter.speech.interfaces import (
    Outcome,
    Recognition,
    RecognitionSession,
    SpeechRecognizer,
    TextToSpeech,
)
from callcenter.speech.sphinx_recognizer import SphinxRecognizer, SphinxSession, SphinxSettings
from callcenter.speech.tts import CachedTts

__all__ = [
    "CachedTts",
    "Outcome",
    "Recognition",
    "RecognitionSession",
    "SpeechRecognizer",
    "SphinxRecognizer",
    "SphinxSession",
    "SphinxSettings",
    "TextToSpeech",
]
