"""Text stage: normalisation and chunking (:mod:`.prepare`), tokenizers (:mod:`.tokenizer`)."""
