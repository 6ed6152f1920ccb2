"""Datasets of text examples: the `TextData` value and the readers behind the data-source operators.
Nothing here imports torch."""
