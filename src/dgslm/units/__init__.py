"""Unit file formats: the fairseq dictionary, code files, per-channel unit files, mmap indexed datasets."""
