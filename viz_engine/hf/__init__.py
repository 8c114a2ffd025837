"""Adapters for Hugging Face vision-language models, loaded from a local directory only
(``local_files_only=True``): nothing is downloaded."""
