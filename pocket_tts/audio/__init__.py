"""Audio: reading voice prompts, resampling, end_on_pause and streaming WAV output."""
