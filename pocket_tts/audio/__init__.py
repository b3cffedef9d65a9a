"""Audio: the prompt path into the Mimi encoder and the last stage of the pipeline.

Each part is imported from its own module (this package re-exports nothing):

* :mod:`pocket_tts.audio.read`: reading audio files (stdlib :mod:`wave` for 16-bit WAV,
  :mod:`soundfile` otherwise), the codec's ``SAMPLE_RATE``, sample-rate and sample checks, and
  the errors (``AudioError``, ``AudioFileNotFoundError``).
* :mod:`pocket_tts.audio.resample`: ``resample`` (the reference's ``convert_audio``) and
  ``torch_linspace`` (torch's ``linspace`` values, for the fades).
* :mod:`pocket_tts.audio.prompt`: voice prompts from files, URLs or arrays
  (``load_prompt_audio``), ``end_on_pause`` and the 30 s truncation.
* :mod:`pocket_tts.audio.wav`: the output side: ``StreamingWAVWriter``, ``write_wav``,
  ``float_to_pcm16``, ``stream_audio_chunks``.

Imports go one way, read <- resample <- prompt; wav uses only read. Nothing here imports the
higher layers (``tts_model``, ``pipeline``).
"""
